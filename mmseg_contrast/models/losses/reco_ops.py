"""Kernels of :class:`~mmseg_contrast.models.losses.reco_loss.ReCoLoss`:
the memory-lean query-key similarity :class:`_GatherDot` and the uniform
integer draws of the sampling. Both are free of host synchronisation."""
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['_GatherDot', '_uniform_index']


class _GatherDot(torch.autograd.Function):
    """``out[r, n] = <queries[r], keys[index[r, n]]>`` for ``(R, D)`` queries,
    ``(P, D)`` constant keys (no gradient) and ``(R, N)`` indices.

    The ``(R, N, D)`` gathered keys are never kept: the forward gathers
    chunks of at most ``max_elems`` elements into one reused buffer
    (``index_select`` + ``bmm``), and the backward
    ``grad_q[r] = sum_n grad[r, n] keys[index[r, n]]`` is exactly
    ``F.embedding_bag(index, keys, per_sample_weights=grad, mode='sum')``,
    a fused gather-reduce. The reference instead keeps every
    class's ``(Q, 1 + N, D)`` key tensor alive for backward. When the key
    bank is small (``P <= matmul_max_ratio * N``) the forward instead takes
    ``queries @ keys.T`` chunk-wise and gathers from it (same values).
    """

    matmul_max_ratio = 32

    @staticmethod
    def forward(ctx, queries: Tensor, keys: Tensor, index: Tensor,
                max_elems: int) -> Tensor:
        R, N = index.shape
        P, D = keys.shape
        ctx.save_for_backward(keys, index)
        if P <= _GatherDot.matmul_max_ratio * N:
            # few key pixels: a GEMM against all keys then a gather is
            # cheaper than gathering N rows per query
            rows = max(1, min(R, max_elems // P))
            out = queries.new_empty(R, N)
            buf = queries.new_empty(rows, P)
            kt = keys.t()
            for s in range(0, R, rows):
                sim = torch.mm(queries[s:s + rows], kt,
                               out=buf[:min(rows, R - s)])
                torch.gather(sim, 1, index[s:s + rows], out=out[s:s + rows])
            return out
        out = queries.new_empty(R, 1, N)
        rows = max(1, min(R, max_elems // (N * D)))
        buf = keys.new_empty(rows * N, D)
        for s in range(0, R, rows):
            idx = index[s:s + rows].reshape(-1)
            k = torch.index_select(keys, 0, idx, out=buf[:idx.numel()])
            # (r, 1, D) @ (r, D, N): much faster than (r, N, D) @ (r, D, 1)
            torch.bmm(queries[s:s + rows].unsqueeze(1),
                      k.view(-1, N, D).transpose(1, 2), out=out[s:s + rows])
        return out.squeeze(1)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        keys, index = ctx.saved_tensors
        grad_q = F.embedding_bag(
            index, keys, per_sample_weights=grad_out.contiguous(),
            mode='sum')
        return grad_q, None, None, None


def _uniform_index(low: Tensor, count: Tensor, shape, generator) -> Tensor:
    """Integers uniform in ``[low, low + count)`` per leading entry.

    ``low`` and ``count`` broadcast against ``shape``; float64 uniforms keep
    the bias below 2**-40 for any realistic ``count``. Entries with
    ``count == 0`` return ``low`` (callers mask them out).
    """
    u = torch.rand(shape, generator=generator, dtype=torch.float64,
                   device=low.device)
    local = (u * count.to(torch.float64)).long()
    local = torch.minimum(local, (count - 1).clamp(min=0))
    return low + local
