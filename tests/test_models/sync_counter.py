"""Counting host-synchronising ("sync-prone") calls in tests.

:class:`SyncCounter` counts, on any device (CPU included, where nothing
really synchronises):

* Python-level calls that read a tensor on the host (a
  ``TorchFunctionMode``): ``.item() .tolist() .cpu() .numpy()``,
  ``bool() int() float() index()`` of a tensor, and ``torch.tensor`` /
  ``torch.as_tensor`` of Python data (a host-to-device copy off the CPU);
* dispatched ATen ops whose output shape or value needs the data (a
  ``TorchDispatchMode``): ``_local_scalar_dense`` (item / bool / int of a
  0-d tensor reached inside a composite op, e.g. ``F.one_hot``'s range
  checks), ``nonzero`` / ``argwhere``, ``unique*``, ``masked_select``,
  ``equal``, ``bincount``, ``index`` / ``index_put`` with a boolean index
  (``x[mask]``: a nonzero inside the kernel) and ``repeat_interleave`` with
  tensor repeats and no ``output_size``.

Ops dispatched while a counted Python call runs are not counted again
(``int(t)`` is one call, not two). Not seen: work inside a kernel (only
the op is seen) and copies between devices that a kernel makes itself.
On CUDA, :func:`sync_debug` / :func:`cuda_sync_warnings` run code under
``torch.cuda.set_sync_debug_mode`` ('error' / 'warn', counting the
warnings).
"""
import contextlib
import warnings
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ['SyncCounter', 'cuda_sync_warnings', 'sync_debug']

_METHODS = {'item', 'tolist', 'cpu', 'numpy', '__bool__', '__int__',
            '__float__', '__index__', '__complex__'}
_FACTORIES = {'tensor', 'as_tensor'}
_OPS = {'_local_scalar_dense', 'nonzero', 'nonzero_numpy', 'argwhere',
        'unique', '_unique', '_unique2', 'unique_dim',
        'unique_consecutive', 'masked_select', 'equal', 'bincount'}
_INDEX_OPS = {'index', 'index_put', 'index_put_', '_index_put_impl_'}
_REPEATS_TENSOR = {'repeat_interleave.Tensor',
                   'repeat_interleave.self_Tensor'}


def _is_mask(t):
    return isinstance(t, torch.Tensor) and t.dtype in (torch.bool,
                                                       torch.uint8)


class SyncCounter:
    """``with SyncCounter() as c: ...``; ``c.total``, ``c.calls`` (name ->
    count). See the module docstring for what is counted."""

    def __init__(self):
        self.calls = Counter()
        self.inside = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __enter__(self):
        self._modes = [_DispatchCounter(self), _FunctionCounter(self)]
        for m in self._modes:
            m.__enter__()
        return self

    def __exit__(self, *exc):
        for m in reversed(self._modes):
            m.__exit__(*exc)


class _FunctionCounter(TorchFunctionMode):

    def __init__(self, counter):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, '__name__', '')
        if not (name in _METHODS or (
                name in _FACTORIES and args
                and not isinstance(args[0], torch.Tensor))):
            return func(*args, **kwargs)
        self.counter.calls[name] += 1
        self.counter.inside += 1
        try:
            return func(*args, **kwargs)
        finally:
            self.counter.inside -= 1


class _DispatchCounter(TorchDispatchMode):

    def __init__(self, counter):
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self.counter.inside:
            name = func.__name__.split('.')[0]
            if name in _OPS:
                self.counter.calls['aten.' + name] += 1
            elif name in _INDEX_OPS and any(
                    _is_mask(i) for i in (args[1] or []) if i is not None):
                self.counter.calls[f'aten.{name}[bool]'] += 1
            elif func.__name__ in _REPEATS_TENSOR and \
                    kwargs.get('output_size') is None:
                self.counter.calls['aten.repeat_interleave[tensor]'] += 1
        return func(*args, **kwargs)


@contextlib.contextmanager
def sync_debug(mode):
    """``torch.cuda.set_sync_debug_mode(mode)`` inside the block, the
    previous mode restored after it."""
    prev = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(prev)


@contextlib.contextmanager
def cuda_sync_warnings():
    """Collect the CUDA sync warnings (sync debug mode 'warn') of the
    block into the yielded list."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        got = []
        with sync_debug('warn'):
            yield got
        torch.cuda.synchronize()
    got.extend(str(w.message) for w in caught
               if 'synchroniz' in str(w.message).lower())
