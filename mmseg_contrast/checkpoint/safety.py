"""Safe checkpoint loading (installed by :func:`mmseg_contrast._compat.apply`).

torch >= 2.6 loads with ``weights_only=True``, and mmengine 0.10.7
checkpoints pickle numpy objects and ``HistoryBuffer``. Instead of turning
the protection off, :func:`install_checkpoint_allowlist` registers an
allowlist of the safe types mmengine writes (:func:`safe_checkpoint_globals`)
and routes every checkpoint mmengine reads through
:func:`load_checkpoint_file`:

* mmengine's local-file scheme (``tools/test.py CFG CKPT``, ``load_from``,
  ``--resume``, ``init_cfg=dict(type='Pretrained', ...)``) is replaced;
* every other ``torch.load`` in ``mmengine.runner.checkpoint`` (``pavi://``,
  ``s3://`` / ``petrel://``, local ``open-mmlab://`` files) goes through it
  as well (that module sees a ``torch`` whose ``load`` is
  :func:`load_checkpoint_file`);
* ``http(s)://`` (and the schemes resolving to URLs) are loaded by
  :mod:`mmseg_contrast.checkpoint.download`, which also uses it.

:func:`load_checkpoint_file` first checks the file's integrity
(:mod:`mmseg_contrast.checkpoint.integrity`: empty, garbage, truncated, CRC,
sha256 in the name), then unpickles with ``weights_only=True``. A checkpoint
carrying any pickled global outside the allowlist (e.g. a callable) is
refused with :class:`UnsafeCheckpointError` before any of it runs; a damaged
one gives :class:`CorruptCheckpointError`. ``MMSEG_CONTRAST_TRUSTED_CKPT=1``
opts out of the allowlist (full unpickling) for files you trust; the
integrity checks still apply.

Before unpickling, the resource bounds of
:mod:`mmseg_contrast.checkpoint.bounds` apply (objects outside the tensors:
64 MiB plus 4 bytes per byte of pickle,
``MMSEG_CONTRAST_CKPT_OBJECT_LIMIT_MB``; compressed zip records: at most
20x); ``MMSEG_CONTRAST_TRUSTED_CKPT=1`` lifts them too. A ``MemoryError``
while unpickling becomes an :class:`UnsafeCheckpointError`. A tar
checkpoint of torch < 0.4, which only full unpickling reads, is refused
with the one-line conversion.

mmengine's ``load_state_dict`` only warns about missing keys, so a
checkpoint of another model "loads" and the model keeps its random weights.
It is wrapped (:func:`~mmseg_contrast.checkpoint.matching.
check_checkpoint_matches`): a state dict that would load no floating-point
tensor of the module raises :class:`CheckpointMismatchError`, one that loads
less than half of them warns with the counts (fine-tuning into a head with
another number of classes still only logs, as in mmengine).
"""
import os
import pickle
import types

import mmengine.runner.checkpoint as ckpt_mod
import torch
from mmengine.runner.checkpoint import CheckpointLoader
from packaging.version import Version

from .allowlist import safe_checkpoint_globals
from .bounds import TRUSTED_ENV, check_pickle_bounds, object_limit
from .errors import (
    CheckpointMismatchError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
)
from .integrity import inspect_checkpoint
from .matching import check_checkpoint_matches, last_loaded
from .naming import hash_prefix_of

__all__ = [
    'TRUSTED_ENV', 'UnsafeCheckpointError', 'CorruptCheckpointError',
    'CheckpointMismatchError', 'safe_checkpoint_globals',
    'load_checkpoint_file', 'check_checkpoint_matches',
    'install_checkpoint_allowlist'
]


def _torch_defaults_to_weights_only():
    return Version(torch.__version__.split('+')[0]) >= Version('2.6')


#: phrases of torch's weights-only unpickler (and the stand-ins of
#: :mod:`.allowlist`) that mean "a global outside the allowlist", as opposed
#: to a damaged pickle
_UNSAFE_MARKERS = ('GLOBAL', 'global', 'reduce for unrecognized function',
                   'Can only create new object', 'Can only build',
                   'not allowed in a checkpoint', 'must be imported to load')


def _unsafe_message(name, err):
    return (f'Refusing to load checkpoint {name!r}: it contains pickled '
            f'objects that are not on mmseg_contrast\'s allowlist of safe '
            f'checkpoint types, so loading it could execute arbitrary code '
            f'({err}). If you trust this file, set {TRUSTED_ENV}=1 to load '
            f'it with full unpickling.')


def _unreadable(name, err):
    text = str(err).strip().split('\n')[0][:300]
    return CorruptCheckpointError(
        f'Checkpoint {name} passed the integrity checks but cannot be read '
        f'as a PyTorch checkpoint ({type(err).__name__}: {text}). It is '
        f'damaged (legacy-format files carry no checksum) or was not '
        f'written by torch.save; re-download or re-create it.')


def _tar_format(name):
    stem = name[:-len('.tar')] if name.endswith('.tar') else name
    out = os.path.splitext(stem)[0] + '_torch2.pth'
    return UnsafeCheckpointError(
        f'Cannot load checkpoint {name!r} safely: it is a tar archive, the '
        f'checkpoint format of torch < 0.4 (records "sys_info", "pickle", '
        f'"tensors" and "storages"), not a damaged file. torch reads this '
        f'format only with full unpickling (weights_only=False), which can '
        f'run code stored in the file, so no safe loader reads it. If you '
        f'trust the file, convert it once (torch 2.x still reads it this '
        f'way):\n  python -c "import torch; torch.save(torch.load({name!r}, '
        f'map_location=\'cpu\', weights_only=False), {out!r})"\nand use '
        f'{out}, or set {TRUSTED_ENV}=1 to load this file as it is.')


def _load(fh, source, name, prefix, map_location):
    trusted = os.environ.get(TRUSTED_ENV, '') == '1'
    limit = None if trusted else object_limit()
    layout = inspect_checkpoint(fh, name, prefix, max_inflated=limit)
    if not trusted:
        if layout.kind == 'tar':
            raise _tar_format(name)
        check_pickle_bounds(fh, name, layout, limit)
    try:
        return torch.load(source, map_location=map_location,
                          weights_only=not trusted)
    except pickle.UnpicklingError as e:
        if not trusted and any(m in str(e) for m in _UNSAFE_MARKERS):
            raise UnsafeCheckpointError(_unsafe_message(name, e)) from None
        raise _unreadable(name, e) from None
    except MemoryError as e:
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {name!r}: unpickling it ran out '
            f'of memory ({e}). It is damaged or crafted to exhaust memory, '
            f'or far larger than this machine can hold.') from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError,
            TypeError, AttributeError, UnicodeDecodeError) as e:
        raise _unreadable(name, e) from None


def load_checkpoint_file(filename, map_location=None, *, check_hash=True,
                         name=None):
    """Load a checkpoint safely: integrity checks, resource bounds, then
    ``torch.load`` with the allowlist (``weights_only=True``).

    Args:
        filename (str | os.PathLike | file object): path or seekable binary
            file object (e.g. ``io.BytesIO``).
        map_location: as for ``torch.load``.
        check_hash (bool): verify the sha256 prefix a ``<name>-<hex>.pth``
            file name promises. Default True (callers that have just
            verified it, like the URL loader, pass False).
        name (str, optional): how the file is called in errors.

    Raises:
        FileNotFoundError: the path does not exist.
        CorruptCheckpointError: empty, not a checkpoint, truncated, failed
            CRC / sha256, or unreadable.
        UnsafeCheckpointError: it pickles a global outside the allowlist,
            would exceed the resource bounds, or is a torch < 0.4 tar file
            (nothing of it has run or been built).
    """
    if isinstance(filename, (str, os.PathLike)):
        filename = os.path.expanduser(os.fspath(filename))
        if not os.path.isfile(filename):
            raise FileNotFoundError(f'{filename} can not be found.')
        name = name or filename
        prefix = hash_prefix_of(filename) if check_hash else None
        with open(filename, 'rb') as fh:
            ckpt = _load(fh, filename, name, prefix, map_location)
    else:
        name = name or str(getattr(filename, 'name', '<in-memory checkpoint>'))
        ckpt = _load(filename, filename, name, None, map_location)
    last_loaded['name'] = name
    return ckpt


class _SafeTorch(types.ModuleType):
    """``torch`` as seen by ``mmengine.runner.checkpoint``: every attribute is
    torch's, except ``load``, which is :func:`load_checkpoint_file`."""

    __mmseg_contrast__ = True

    def __init__(self):
        super().__init__('torch', 'torch, with the safe checkpoint loader')

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **kwargs):
        return load_checkpoint_file(f, map_location=map_location)


def install_checkpoint_allowlist():
    """Register the safe globals and route mmengine's checkpoint reading
    through :func:`load_checkpoint_file` (idempotent)."""
    if not _torch_defaults_to_weights_only():
        return False
    torch.serialization.add_safe_globals(safe_checkpoint_globals())

    def load_from_local(filename, map_location):
        return load_checkpoint_file(filename, map_location=map_location)

    load_from_local.__mmseg_contrast__ = True
    current = CheckpointLoader._schemes.get('')
    if not getattr(current, '__mmseg_contrast__', False):
        CheckpointLoader.register_scheme(
            prefixes='', loader=load_from_local, force=True)
    if not getattr(ckpt_mod.torch, '__mmseg_contrast__', False):
        ckpt_mod.torch = _SafeTorch()
    original = ckpt_mod.load_state_dict
    if not getattr(original, '__mmseg_contrast__', False):

        def load_state_dict(module, state_dict, strict=False, logger=None):
            check_checkpoint_matches(module, state_dict)
            return original(module, state_dict, strict, logger)

        load_state_dict.__doc__ = original.__doc__
        load_state_dict.__mmseg_contrast__ = True
        ckpt_mod.load_state_dict = load_state_dict
    return True
