"""The globals a checkpoint may pickle (registered with
``torch.serialization.add_safe_globals`` by
:func:`mmseg_contrast.checkpoint.safety.install_checkpoint_allowlist`).

Only what mmengine / mmseg / torch.save actually write is listed: numpy
arrays, scalars and dtypes (``meta``, the message hub's history buffers),
mmengine's ``HistoryBuffer`` and ``ConfigDict``, and restricted stand-ins for
``getattr`` and ``bytes``. Nothing here can execute code when unpickled.

Dropped (a training checkpoint of ``tests/data/configs/tiny_fcn_voc_mini.py``
with AdamW and two LR schedulers pickles none of them, nor do the
ContrastiveSeg, DenseCL or mmselfsup checkpoints): ``range`` (its only use
in a pickle is to feed ``set``/``bytearray``/``Counter`` with millions of
items from a few bytes), ``slice``, ``frozenset``, ``collections.defaultdict``
and the numpy scalar *types* (numpy scalars pickle through
``multiarray.scalar``, not through their type). ``set``, ``complex``,
``bytearray``, ``collections.Counter`` and ``collections.OrderedDict`` stay
loadable through torch's own allowlist; what they may build is bounded by
:mod:`mmseg_contrast.checkpoint.bounds`.
"""
import pickle

import numpy as np
from mmengine.config import ConfigDict
from mmengine.logging.history_buffer import HistoryBuffer

try:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover - numpy >= 2
    from numpy._core.multiarray import _reconstruct, scalar

__all__ = ['safe_checkpoint_globals', 'restricted_getattr',
           'restricted_bytes', 'NUMPY_RECONSTRUCT', 'NUMPY_SCALAR']

NUMPY_RECONSTRUCT = _reconstruct
NUMPY_SCALAR = scalar


def restricted_getattr(obj, name, *default):
    """``getattr`` as HistoryBuffer pickles it (its statistics methods, as
    ``getattr(HistoryBuffer, 'mean')``); anything else is refused."""
    if isinstance(obj, type) and issubclass(obj, HistoryBuffer) and \
            (name in ('min', 'max', 'current', 'mean')
             or name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) '
        f'is not allowed in a checkpoint')


def restricted_bytes(*args):
    """``bytes`` as protocol 2 pickles ``b''`` (``bytes()``); ``bytes(n)``
    would allocate n bytes: refused."""
    if not args:
        return b''
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    raise pickle.UnpicklingError(
        f'bytes() of {type(args[0]).__name__} is not allowed in a '
        f'checkpoint')


def safe_checkpoint_globals():
    """Types and functions that mmengine/mmseg checkpoints legitimately
    pickle, for ``torch.serialization.add_safe_globals``."""
    items = [np.ndarray, np.dtype, _reconstruct, scalar]
    # concrete dtype classes (numpy >= 1.25 has them; new-style dtypes such
    # as StringDType pickle by class)
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        for name in dir(dtypes_mod):
            obj = getattr(dtypes_mod, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                items.append(obj)
    items.append(HistoryBuffer)
    # HistoryBuffer pickles its statistics methods as
    # ``getattr(HistoryBuffer, 'mean')``. Plain ``builtins.getattr`` is NOT
    # allowlisted: a restricted stand-in resolves only those attributes.
    items.append((restricted_getattr, 'builtins.getattr'))
    items.append((restricted_getattr, '__builtin__.getattr'))
    # pickle protocol 2 writes b'' as ``bytes()`` (an empty numpy array, an
    # empty HistoryBuffer); ``bytes(n)`` would allocate n bytes: refused
    items.append((restricted_bytes, 'builtins.bytes'))
    items.append((restricted_bytes, '__builtin__.bytes'))
    items.append(ConfigDict)
    return items
