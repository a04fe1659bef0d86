"""Pieces of :class:`~.memory_bank.PixelMemoryBank` without state: the
legacy nearest label resize and the vectorised ring-buffer write (one
``index_copy_`` per queue, no host sync)."""
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['resize_labels_nearest', 'write_ring_rows']


def resize_labels_nearest(labels: Tensor, size) -> Tensor:
    """Legacy PyTorch ``'nearest'`` label resize (``src = floor(dst*in/out)``),
    exactly as the reference (``F.interpolate(..., mode='nearest')``)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    out = F.interpolate(
        labels[:, None].float(), size=tuple(size), mode='nearest')
    return out[:, 0].to(labels.dtype)


def write_ring_rows(queue: Tensor, ptr: Tensor, count: Tensor,
                    values: Tensor, cls: Tensor) -> None:
    """Write rows ``values`` (N, D) of classes ``cls`` (N,) into the ring
    ``queue`` (C, M, D); class ``C`` means "write nothing".

    The rows of each class go to consecutive slots from ``ptr[c]`` in row
    order, modulo M. Rows that write nothing target class 0's first slot
    after this step's writes and carry that slot's current value, so one
    ``index_copy_`` does it all (duplicates only ever write identical
    values; at most ``M - 1`` rows per class, checked in ``enqueue``).
    """
    C, M, D = queue.shape
    N = cls.shape[0]
    n_c = torch.zeros(C + 1, dtype=torch.long, device=cls.device)
    n_c.scatter_add_(0, cls, torch.ones_like(cls))
    # rank of each row within its class: stable sort by class
    order = torch.argsort(cls, stable=True)
    start = torch.cumsum(n_c, 0) - n_c
    rank = torch.empty_like(cls)
    rank[order] = torch.arange(N, device=cls.device) - start[cls[order]]
    n_c = n_c[:C]
    write = cls < C
    c_w = torch.where(write, cls, 0)
    slot = torch.where(write, ptr[c_w] + rank, ptr[0] + n_c[0]) % M
    flat = c_w * M + slot
    qflat = queue.view(C * M, D)
    vals = torch.where(write[:, None], values.to(queue.dtype), qflat[flat])
    qflat.index_copy_(0, flat, vals)
    ptr.copy_((ptr + n_c) % M)
    count.copy_(torch.clamp(count + n_c, max=M))
