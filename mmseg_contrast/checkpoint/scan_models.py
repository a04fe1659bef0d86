"""The memory models of the allowlisted callables, for
:mod:`mmseg_contrast.checkpoint.pickle_scan`.

``model(scan, g, args) -> (value, bytes, what)``: the stand-in value of
``g.obj(*args)``, an upper bound of the bytes it allocates, and a
description when it is large. Arguments a model must read (a numpy shape,
a codec name) have to be literals; a call whose size depends on anything
else is refused (no checkpoint writer produces one).
"""
import _codecs
from collections import Counter, OrderedDict, defaultdict
from functools import reduce
from operator import mul

import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.logging.history_buffer import HistoryBuffer

try:
    from torch import _weights_only_unpickler as _wou
except ImportError:  # pragma: no cover - torch < 1.13
    _wou = None

from .allowlist import (
    NUMPY_RECONSTRUCT,
    NUMPY_SCALAR,
    restricted_bytes,
    restricted_getattr,
)
from .scan_values import (
    _G,
    ENTRY,
    OBJ,
    SHORT,
    SLOT,
    TENSOR,
    ScanRefusal,
    _Blob,
    _Box,
    _Stop,
    as_args,
    concrete,
    expand,
    length,
)

__all__ = ['model_of', 'array_cost', 'configdict_cost', 'allowed_globals',
           'name_maps']

_TEXT_CODECS = {'latin1': 1, 'latin-1': 1, 'iso-8859-1': 1, 'iso8859-1': 1,
                'l1': 1, 'latin': 1, 'ascii': 1, 'us-ascii': 1, 'utf-8': 4,
                'utf8': 4, 'u8': 4}


def allowed_globals():
    """``{name: object}`` torch's unpickler resolves, or None if unknown."""
    try:
        names = dict(_wou._get_user_allowed_globals())
        names.update(_wou._get_allowed_globals())
        return names
    except AttributeError:  # pragma: no cover - another torch
        return None


def name_maps():
    """``(IMPORT_MAPPING, NAME_MAPPING)`` as torch's unpickler applies them
    to GLOBAL names (``__builtin__`` -> ``builtins``, ...)."""
    u = torch._utils
    return getattr(u, 'IMPORT_MAPPING', {}), getattr(u, 'NAME_MAPPING', {})


def _prod(shape):
    if isinstance(shape, int):
        shape = (shape, )
    if not isinstance(shape, tuple) or \
            not all(isinstance(s, int) for s in shape):
        raise ScanRefusal('unsupported', f'a numpy shape {shape!r}')
    return reduce(mul, (max(0, s) for s in shape), 1)


def _itemsize(dtype):
    try:
        return np.dtype(dtype).itemsize
    except Exception:  # numpy refuses it at load time as well
        raise _Stop from None


# ------------------------------------------------------------------ models
# model(scan, g, args) -> (value, bytes, what)
def _m_small(scan, g, args):
    return _Box('obj'), OBJ, None


def _m_generic(scan, g, args):  # allowlisted elsewhere: shallow
    return _Box('any'), OBJ * 2 + SLOT * len(args), None


def _m_set(scan, g, args):
    if not args:
        return _Box('set'), OBJ * 4, None
    n = length(args[0], f'{g.short}()')
    extra = 0 if isinstance(args[0], (tuple, _Box)) and \
        getattr(args[0], 'kind', 'list') in ('list', 'dict') else OBJ
    return (_Box('set', n), OBJ * 4 + n * (ENTRY + extra),
            f'{g.short}() of {n:,} items')


def _m_mapping(scan, g, args):
    kind = 'obj' if g.obj is defaultdict else 'dict'
    src = args[-1] if args else None
    if src is None or (g.obj is defaultdict and len(args) < 2):
        return _Box(kind, 0), OBJ * 4, None
    n = length(src, f'{g.short}()')
    items = list(src.items) if isinstance(src, _Box) and \
        src.kind == 'dict' and isinstance(src.items, list) and \
        len(src.items) == src.n else None
    return (_Box(kind, n, items), OBJ * 4 + n * (ENTRY + OBJ),
            f'{g.short}() of {n:,} items')


def _m_bytearray(scan, g, args):
    if not args:
        return _Blob('bytes', 0), OBJ, None
    src = args[0]
    if isinstance(src, bool) or not isinstance(src, int):
        n = length(src, 'bytearray()') * (4 if len(args) > 1 else 1)
    else:
        n = max(0, src)
    return _Blob('bytes', n), OBJ + n, f'bytearray of {n:,} bytes'


def _m_bytes(scan, g, args):
    n = length(args[0], 'bytes()') if args else 0
    return _Blob('bytes', n), OBJ + n, None


def _m_range(scan, g, args):
    a = concrete(args, 'range()')
    try:
        r = range(*a)
    except (TypeError, ValueError):
        raise _Stop from None
    step = r.step
    n = max(0, (r.stop - r.start + step - (1 if step > 0 else -1)) // step)
    return _Box('range', n), OBJ, None


def _m_encode(scan, g, args):
    if len(args) < 2:
        raise ScanRefusal('unsupported', '_codecs.encode() without a codec')
    codec = concrete(args[1], '_codecs.encode() codec')
    factor = _TEXT_CODECS.get(str(codec).lower().replace('_', '-'))
    if factor is None:
        raise ScanRefusal(
            'unsupported', f'_codecs.encode(..., {codec!r}) (checkpoints '
            f'use only text codecs; this one can multiply the data at each '
            f'call)')
    src = args[0]
    if isinstance(src, str) and len(src) <= SHORT:
        try:
            out = src.encode(codec)
        except (UnicodeError, LookupError):
            raise _Stop from None
        return out, OBJ + len(out), None
    n = length(src, '_codecs.encode()') * factor
    return _Blob('bytes', n), OBJ + n, f'_codecs.encode() of {n:,} bytes'


def array_cost(shape, dtype, what):
    n = _prod(shape)
    nbytes = n * _itemsize(dtype)
    return (_Box('ndarray', n), OBJ * 2 + nbytes,
            f'a numpy {what} of shape {shape} and dtype '
            f'{np.dtype(dtype).name}, {nbytes:,} bytes')


def _m_reconstruct(scan, g, args):
    if len(args) != 3:
        raise _Stop
    shape = concrete(args[1], 'numpy _reconstruct() shape')
    return array_cost(shape, concrete(args[2], 'numpy dtype'), 'array')


def _m_ndarray(scan, g, args):
    if not args:
        raise _Stop
    shape = concrete(args[0], 'numpy.ndarray() shape')
    dtype = concrete(args[1], 'numpy dtype') if len(args) > 1 else float
    return array_cost(shape, float if dtype is None else dtype, 'array')


def _m_scalar(scan, g, args):
    if not args:
        raise _Stop
    size = _itemsize(concrete(args[0], 'numpy scalar dtype'))
    return _Box('obj'), OBJ + size, None


def _m_dtype(scan, g, args):
    a = concrete(args, 'numpy dtype')
    try:  # a private copy: BUILD may set its state (never numpy's cache)
        d = np.dtype(g.obj(*a), copy=True)
    except Exception:  # numpy refuses it at load time as well
        raise _Stop from None
    return d, OBJ * 4 + ENTRY * len(d.names or ()), None


def _m_configdict(scan, g, args):
    if not args:
        return _Box('cfgdict'), OBJ * 8, None
    return configdict_cost(scan, args[0])


def configdict_cost(scan, src):
    nodes, entries = expand(src, scan.room() // ENTRY + 1)
    return (_Box('cfgdict'), nodes * OBJ * 8 + entries * ENTRY,
            f'a ConfigDict that copies {nodes:,} or more nested dicts')


def _size_numel(args, i):
    if len(args) > i:
        try:
            return _prod(concrete(args[i], 'tensor size'))
        except ScanRefusal:
            return None
    return None


def _m_tensor(scan, g, args):
    return _Box('tensor', None), TENSOR, None


def _m_qtensor(scan, g, args):
    n = _size_numel(args, 2)
    if n is None:
        raise ScanRefusal('unsupported', 'a quantized tensor of unknown size')
    st = args[0] if args else None
    have = st.n if isinstance(st, _Box) and st.kind == 'storage' else 0
    elsize = st.items if isinstance(st, _Box) and st.items else 4
    extra = n * elsize if n * elsize > have else 0
    return (_Box('tensor', n), TENSOR + extra,
            f'a quantized tensor of {n:,} elements')


def _m_from_numpy(scan, g, args):
    src = args[0] if args else None
    n = src.n if isinstance(src, _Box) and src.n is not None else 0
    return _Box('tensor', n), TENSOR + 16 * n, None


def _m_from_type(scan, g, args):
    if len(args) < 3:
        raise _Stop
    func = args[0]
    value, cost, what = scan.call(func, as_args(args[2], func.name)) \
        if isinstance(func, _G) else (_Box('any'), OBJ, None)
    state = length(args[3], 'tensor state', default=0) \
        if len(args) > 3 else 0
    return value, cost + state * ENTRY, what


def _m_size(scan, g, args):
    t = args[0] if args else ()
    return t, OBJ + SLOT * length(t, 'torch.Size()'), None


def _m_constructor(scan, g, args):
    if not args:
        return _Box('tensor', 0), TENSOR, None
    raise ScanRefusal(
        'unsupported', f'{g.name}(...), a tensor or storage built from '
        f'its arguments')


def _m_unknown(scan, g, args):  # pragma: no cover - another torch
    raise ScanRefusal('unsupported', f'a call of {g.name}, which the '
                      f'resource check cannot resolve')


def _m_not_callable(scan, g, args):
    raise _Stop


def _build_models():
    u = torch._utils
    models = {
        set: _m_set, frozenset: _m_set, OrderedDict: _m_mapping,
        Counter: _m_mapping, defaultdict: _m_mapping,
        bytearray: _m_bytearray, restricted_bytes: _m_bytes, range: _m_range,
        complex: _m_small, slice: _m_small, restricted_getattr: _m_small,
        np.ndarray: _m_ndarray, NUMPY_RECONSTRUCT: _m_reconstruct,
        NUMPY_SCALAR: _m_scalar, HistoryBuffer: _m_small,
        ConfigDict: _m_configdict, torch.Size: _m_size,
        torch.device: _m_small, torch.nn.Parameter: _m_tensor,
        torch._tensor._rebuild_from_type_v2: _m_from_type,
    }
    models[_codecs.encode] = _m_encode
    for name in dir(u):
        if name.startswith('_rebuild_'):
            models[getattr(u, name)] = _m_tensor
    models[u._rebuild_qtensor] = _m_qtensor
    models[u._rebuild_device_tensor_from_numpy] = _m_from_numpy
    get_layout = getattr(torch.serialization, '_get_layout', None)
    if get_layout is not None:
        models[get_layout] = _m_small
    for cls in list(torch._tensor_classes) + [
            torch.Tensor, torch.UntypedStorage, torch.storage.TypedStorage]:
        models[cls] = _m_constructor
    return models


_MODELS = {}


def model_of(obj):
    if not _MODELS:
        _MODELS.update(_build_models())
    try:
        found = _MODELS.get(obj)
    except TypeError:  # unhashable
        found = None
    if found is not None:
        return found
    if isinstance(obj, type) and issubclass(obj, np.dtype) or obj is np.dtype:
        return _m_dtype
    if isinstance(obj, type) and issubclass(
            obj, getattr(torch.storage, '_StorageBase', ())):
        return _m_constructor
    if obj is None:  # pragma: no cover - an unresolved name: fail closed
        return _m_unknown
    if not callable(obj) or isinstance(obj, (torch.dtype, np.dtype)):
        return _m_not_callable
    return _m_generic
