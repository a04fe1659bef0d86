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

mmengine's ``load_state_dict`` only warns about missing keys, so a
checkpoint of another model "loads" and the model keeps its random weights.
It is wrapped (:func:`check_checkpoint_matches`): a state dict that shares
no key with the module it is loaded into raises
:class:`CheckpointMismatchError` (partial matches, e.g. fine-tuning into a
head with another number of classes, still only warn, as in mmengine).
"""
import collections
import os
import pickle
import types

import mmengine.runner.checkpoint as ckpt_mod
import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader
from packaging.version import Version

from .errors import (
    CheckpointMismatchError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
)
from .integrity import verify_checkpoint_file
from .naming import hash_prefix_of

__all__ = [
    'TRUSTED_ENV', 'UnsafeCheckpointError', 'CorruptCheckpointError',
    'CheckpointMismatchError', 'safe_checkpoint_globals',
    'load_checkpoint_file', 'check_checkpoint_matches',
    'install_checkpoint_allowlist'
]

TRUSTED_ENV = 'MMSEG_CONTRAST_TRUSTED_CKPT'
#: name of the last checkpoint read by :func:`load_checkpoint_file` (named
#: in :class:`CheckpointMismatchError`, raised right after mmengine loads it)
_last_loaded = {'name': None}



def _torch_defaults_to_weights_only():
    return Version(torch.__version__.split('+')[0]) >= Version('2.6')


def safe_checkpoint_globals():
    """Types that mmengine/mmseg checkpoints legitimately pickle.

    numpy arrays, scalars and dtypes (in ``meta`` and the message hub's
    history buffers), mmengine's ``HistoryBuffer`` and ``ConfigDict``, and the
    builtins those use. Nothing here can execute code when unpickled.
    """
    items = [np.ndarray, np.dtype]
    try:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    items += [_reconstruct, scalar]
    # concrete dtype classes (numpy >= 1.25 pickles dtypes by class)
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        for name in dir(dtypes_mod):
            obj = getattr(dtypes_mod, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                items.append(obj)
    # numpy scalar types
    for name in ('bool_', 'int8', 'int16', 'int32', 'int64', 'uint8',
                 'uint16', 'uint32', 'uint64', 'float16', 'float32',
                 'float64', 'complex64', 'complex128', 'str_'):
        if hasattr(np, name):
            items.append(getattr(np, name))
    items.append(HistoryBuffer)
    # HistoryBuffer pickles its statistics methods as
    # ``getattr(HistoryBuffer, 'mean')``. Plain ``builtins.getattr`` is NOT
    # allowlisted: a restricted stand-in resolves only those attributes.
    items.append((_restricted_getattr, 'builtins.getattr'))
    items.append((_restricted_getattr, '__builtin__.getattr'))
    # pickle protocol 2 writes b'' as ``bytes()`` (an empty numpy array, an
    # empty HistoryBuffer); ``bytes(n)`` would allocate n bytes: refused
    items.append((_restricted_bytes, 'builtins.bytes'))
    items.append((_restricted_bytes, '__builtin__.bytes'))
    items.append(ConfigDict)
    items += [collections.OrderedDict, collections.defaultdict, set,
              frozenset, slice, range, complex]
    return items


def _restricted_getattr(obj, name, *default):
    if isinstance(obj, type) and issubclass(obj, HistoryBuffer) and \
            (name in ('min', 'max', 'current', 'mean')
             or name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) '
        f'is not allowed in a checkpoint')


def _restricted_bytes(*args):
    if not args:
        return b''
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    raise pickle.UnpicklingError(
        f'bytes() of {type(args[0]).__name__} is not allowed in a '
        f'checkpoint')


#: phrases of torch's weights-only unpickler (and the stand-ins above) that
#: mean "a global outside the allowlist", as opposed to a damaged pickle
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


def load_checkpoint_file(filename, map_location=None, *, check_hash=True,
                         name=None):
    """Load a checkpoint safely: integrity checks, then ``torch.load`` with
    the allowlist (``weights_only=True``).

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
        UnsafeCheckpointError: it pickles a global outside the allowlist
            (nothing of it has run).
    """
    if isinstance(filename, (str, os.PathLike)):
        filename = os.path.expanduser(os.fspath(filename))
        if not os.path.isfile(filename):
            raise FileNotFoundError(f'{filename} can not be found.')
        name = name or filename
        prefix = hash_prefix_of(filename) if check_hash else None
    else:
        name = name or str(getattr(filename, 'name', '<in-memory checkpoint>'))
        prefix = None
    verify_checkpoint_file(filename, name, prefix)
    trusted = os.environ.get(TRUSTED_ENV, '') == '1'
    try:
        ckpt = torch.load(filename, map_location=map_location,
                          weights_only=not trusted)
    except pickle.UnpicklingError as e:
        if not trusted and any(m in str(e) for m in _UNSAFE_MARKERS):
            raise UnsafeCheckpointError(_unsafe_message(name, e)) from None
        raise _unreadable(name, e) from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError,
            TypeError, AttributeError, UnicodeDecodeError) as e:
        raise _unreadable(name, e) from None
    _last_loaded['name'] = name
    return ckpt


# ---------------------------------------------------------------- matching
def _unwrap(module):
    while is_model_wrapper(module) or isinstance(module, BaseTTAModel):
        module = module.module
    return module


def check_checkpoint_matches(module, state_dict, name=None):
    """Raise :class:`CheckpointMismatchError` if ``state_dict`` shares no key
    with ``module.state_dict()`` (nothing would be loaded).

    ``name`` defaults to the last file read by :func:`load_checkpoint_file`.
    The message shows a key of each side and, when the keys differ only by
    a leading prefix, the ``prefix=`` / ``init_cfg`` fix.
    """
    module = _unwrap(module)
    own = module.state_dict()
    if not own or any(k in own for k in state_dict):
        return
    what = f'Checkpoint {name or _last_loaded["name"] or "(in memory)"}'
    where = f'{type(module).__name__}'
    if not state_dict:
        raise CheckpointMismatchError(
            f'{what} holds no weights (an empty state_dict) for {where}: '
            f'the model would keep its random initialisation.')
    ck, mk = next(iter(state_dict)), next(iter(own))
    hint = ''
    for k in state_dict:
        head, _, rest = k.partition('.')
        if rest in own:
            hint = (f" Its keys carry a '{head}.' prefix: to load a part "
                    f"of a full-model checkpoint into this sub-module use "
                    f"init_cfg=dict(type='Pretrained', checkpoint=..., "
                    f"prefix='{head}.').")
            break
    else:
        for k in own:
            head, _, rest = k.partition('.')
            if rest in state_dict:
                hint = (f" It looks like the weights of the '{head}' "
                        f"sub-module alone: load it with model.{head}."
                        f"init_cfg=dict(type='Pretrained', checkpoint=...) "
                        f"instead of load_from / tools/test.py.")
                break
    raise CheckpointMismatchError(
        f'{what} shares no parameter name with the model ({where}): '
        f'nothing would be loaded and the model would keep its random '
        f'weights. Checkpoint keys look like {ck!r}, the model\'s like '
        f'{mk!r}; is it the checkpoint of this config?{hint}')


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
