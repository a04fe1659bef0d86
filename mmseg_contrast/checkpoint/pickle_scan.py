"""A bounded dry run of a checkpoint's pickle, before torch unpickles it.

torch's ``weights_only`` unpickler refuses code but not size: a few bytes
of ``set(range(10**9))``, ``bytearray(2e9)``, numpy ``_reconstruct(ndarray,
(2**33,), ...)`` or ``_codecs.encode`` chained through ``'hex'`` build
gigabytes. :class:`PickleScan` walks the pickle with exactly the opcodes that
unpickler accepts, on stand-in values: scalars, short strings and tuples are
kept, everything else is a size (:class:`_Box`, :class:`_Blob`), and every
allowlisted callable has a model of the memory its result takes. The sum is
an upper bound of the Python objects the real load builds outside the
tensors' storages; it may not pass ``limit + PICKLE_FACTOR * (bytes of
pickle read so far)``. Nothing is built or called except numpy ``dtype``
constructors on literal arguments.

The walk stops (:class:`_Stop`) exactly where torch's unpickler fails too
(an opcode or global it does not accept, stack underflow, truncation), so
everything torch executes has been accounted for; torch then reports the
error itself.
"""
import sys

import numpy as np
import torch

from .scan_loop import walk
from .scan_models import (
    allowed_globals,
    array_cost,
    configdict_cost,
    model_of,
    name_maps,
)
from .scan_values import (
    _G,
    ENTRY,
    OBJ,
    PICKLE_FACTOR,
    ScanRefusal,
    _Box,
    _Stop,
    concrete,
    length,
)

__all__ = ['PickleScan', 'ScanRefusal', 'PICKLE_FACTOR']

_BLOCKED = ('sys', 'os', 'posix', 'nt')


# ------------------------------------------------------------------ walker
class PickleScan:
    """Walk the pickle(s) of one checkpoint (bytes or mmap ``buf``).

    Args:
        buf: the file's (or ``data.pkl``'s) bytes: ``bytes`` or ``mmap``.
        limit (int): bytes of objects allowed beyond ``PICKLE_FACTOR`` per
            byte of pickle read.
        file_size (int, optional): legacy files only: the most tensor data
            their storages may claim.
    """

    def __init__(self, buf, limit, file_size=None):
        self.buf, self.limit, self.file_size = buf, limit, file_size
        self.cost, self.start, self.pos = 0, None, 0
        self.allowed = allowed_globals()
        self.imports, self.names = name_maps()
        self.legacy_storages, self._elsize = {}, {}

    def run(self, start, end):
        """Walk the pickle at ``buf[start:end]``; return the offset after
        its STOP, or None where torch's unpickler fails as well.

        Raises:
            ScanRefusal: over the budget, or a construct that cannot be
                bounded (nothing of the file has been built).
        """
        if self.start is None:
            self.start = start
        try:
            return walk(self, start, end)
        except _Stop:
            return None
        except ScanRefusal:
            raise
        except Exception as e:  # fail closed
            raise ScanRefusal(
                'unsupported', f'a pickle the resource check cannot follow '
                f'({type(e).__name__}: {e})') from None

    def room(self):
        return max(0, self.limit + PICKLE_FACTOR * (self.pos - self.start)
                   - self.cost)

    def call(self, fn, args):
        """``(value, bytes, what)`` of ``fn(*args)`` (REDUCE, NEWOBJ)."""
        try:
            return model_of(fn.obj)(self, fn, args)
        except (ScanRefusal, _Stop):
            raise
        except Exception as e:  # a model met arguments it cannot read
            raise ScanRefusal(
                'unsupported', f'{fn.name}() with arguments that cannot be '
                f'checked ({type(e).__name__}: {e})') from None

    def build(self, inst, state):
        """``(bytes, what)`` of BUILD (``inst.__setstate__(state)``)."""
        try:
            return self._build(inst, state)
        except (ScanRefusal, _Stop):
            raise
        except Exception as e:
            raise ScanRefusal(
                'unsupported', f'a state that cannot be checked '
                f'({type(e).__name__}: {e})') from None

    def _build(self, inst, state):
        if isinstance(inst, np.dtype):
            st = concrete(state, 'numpy dtype state')
            try:
                inst.__setstate__(st)
            except Exception:  # numpy refuses it at load time as well
                raise _Stop from None
            return OBJ, None
        if not isinstance(inst, _Box):
            return OBJ, None  # torch refuses it (or it is a no-op)
        if inst.kind == 'ndarray':
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise _Stop
            shape = concrete(state[-4], 'numpy array shape')
            value, cost, what = array_cost(
                shape, concrete(state[-3], 'numpy array dtype'), 'array')
            inst.n = value.n
            return cost, what
        if inst.kind == 'cfgdict':
            _, cost, what = configdict_cost(self, state)
            return cost, what
        parts = state if isinstance(state, tuple) else (state, )
        return OBJ + ENTRY * sum(length(p, 'state', default=1)
                                 for p in parts), None

    def global_at(self, pos, end):
        """``(offset after the GLOBAL's two lines, _G)``."""
        buf = self.buf
        nl1 = buf.find(b'\n', pos, end)
        nl2 = buf.find(b'\n', nl1 + 1, end) if nl1 >= 0 else -1
        if nl2 < 0:
            raise _Stop
        try:
            module = bytes(buf[pos:nl1]).decode('utf-8')
            name = bytes(buf[nl1 + 1:nl2]).decode('utf-8')
        except UnicodeDecodeError:
            raise _Stop from None
        if (module, name) in self.names:
            module, name = self.names[(module, name)]
        elif module in self.imports:
            module = self.imports[module]
        full = f'{module}.{name}'
        if module in _BLOCKED:
            raise _Stop
        if self.allowed is None:  # pragma: no cover - another torch
            # resolve among modules already imported (never import here)
            obj = getattr(sys.modules.get(module), name, None)
            return nl2 + 1, _G(full, obj)
        if full not in self.allowed:
            raise _Stop  # torch refuses this global itself
        return nl2 + 1, _G(full, self.allowed[full])

    def persistent(self, pid):
        """The storage a persistent id loads; legacy files: the tensor data
        all storages claim may not exceed the file."""
        if not isinstance(pid, tuple) or len(pid) < 5:
            return _Box('storage', 0)
        stype, key, numel = pid[1], pid[2], pid[4]
        elsize = self._elsize.get(stype)
        if elsize is None:
            elsize = self._elsize[stype] = _element_size(stype)
        if not isinstance(numel, int) or not elsize or pid[0] not in (
                'storage', b'storage'):
            return _Box('storage', 0)
        nbytes = numel * elsize
        if self.file_size is not None:  # legacy: tensors follow the pickles
            self.legacy_storages[key] = nbytes
            claimed = sum(self.legacy_storages.values())
            if claimed > self.file_size:
                raise ScanRefusal(
                    'corrupt', f'its storages claim {claimed:,} bytes of '
                    f'tensor data but the file has only {self.file_size:,} '
                    f'bytes (if it was cut, its end is missing)')
        return _Box('storage', nbytes, elsize)


def _element_size(stype):
    """Bytes per element of a pickled storage type (0: unknown)."""
    obj = stype.obj if isinstance(stype, _G) else None
    if obj is torch.UntypedStorage:
        return 1
    try:
        return torch._utils._element_size(obj.dtype)
    except Exception:
        return 0
