"""The two contrast terms of the pixel contrast loss on sampled anchors:
in-batch (ContrastiveSeg ``_contrastive``) and against a class-wise memory
bank (``loss_contrast_mem.py``), with the hard / semi-hard key mining of
paper §3.3. Formulas and every difference from the reference:
:mod:`~mmseg_contrast.models.losses.pixel_contrast_loss`.

No host sync (fixed shapes; class membership by comparison, not
``F.one_hot``, which reads the label range on the host off CUDA). All sums
(similarities, log-sum-exps, means over anchors) are fp32 with autocast off,
whatever the dtype of the anchors and of the bank.
"""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..utils.device_utils import check_generator, fp32_region

__all__ = ['in_batch_contrast', 'memory_contrast', 'select_keys']

# finite stand-in for -inf: keeps logsumexp gradients finite when a row has
# no negatives at all (exp(-1e30 - x) == 0 in fp32)
_NEG = -1e30


def _masked_row_mean(loss_r: Tensor, has: Tensor, anchor: Tensor) -> Tensor:
    n = has.sum()
    out = (loss_r * has).sum() / n.clamp(min=1)
    return out + anchor.sum() * 0  # stays connected even with no rows


def in_batch_contrast(feats: Tensor, labels: Tensor, temperature: float,
                      base_temperature: float) -> Tensor:
    """Reference ``_contrastive`` on (T, V, D) views, labels (T,).

    Every view is an anchor and a contrast sample; returns the mean of
    :math:`L_i` over views with at least one positive (fp32).
    """
    T, V, D = feats.shape
    f = feats.transpose(0, 1).reshape(T * V, D).float()  # view-major
    lab = labels.repeat(V)
    with fp32_region(f.device):
        s = (f @ f.t()) / temperature
        same = lab[:, None] == lab[None, :]
        neg_lse = torch.logsumexp(s.masked_fill(same, _NEG), dim=1)
        log_prob = s - torch.logaddexp(s, neg_lse[:, None])
        pos = same.clone()
        pos.fill_diagonal_(False)
        n_pos = pos.sum(1)
        loss_r = -(log_prob * pos).sum(1) / n_pos.clamp(min=1)
        loss_r = loss_r * (temperature / base_temperature)
        return _masked_row_mean(loss_r, n_pos > 0, f)


def _as_queues(queue) -> list:
    """Normalise ``queue`` to ``[(q (C, M, D), filled (C, M) bool|None)]``."""
    if hasattr(queue, 'queues') and callable(queue.queues):
        return list(queue.queues())
    if isinstance(queue, Tensor):
        return [(queue, None)]
    if isinstance(queue, (list, tuple)):
        out = []
        for item in queue:
            if isinstance(item, Tensor):
                out.append((item, None))
            else:
                q, m = item
                out.append((q, m))
        return out
    raise TypeError(
        'PixelContrastLoss: queue must be a PixelMemoryBank, a (C, M, D) '
        'tensor or a list of (queue, filled_mask) pairs, got '
        f'{type(queue).__name__}')


def select_keys(logits: Tensor, valid: Tensor, k: int, mode: str,
                hardest_high: bool, ratio: float = 0.1,
                generator: Optional[torch.Generator] = None
                ) -> Tuple[Tensor, Tensor]:
    """Pick ``k`` keys per row (hard example mining, paper §3.3).

    Args:
        logits: (N, K_all) similarities / tau.
        valid: (N, K_all) bool, which entries are real keys.
        k: number of keys per row.
        mode: ``'hardest'`` (top-k hardest) or ``'semi_hard'`` (k uniform
            draws from the ``ratio`` hardest, pool widened to ``min(k, n)``).
        hardest_high: True for negatives (hard = most similar), False for
            positives (hard = least similar).

    Returns:
        (vals (N, k'), keep (N, k') bool) with ``k' = min(k, K_all)``.
    """
    check_generator('PixelContrastLoss', generator, logits.device)
    n_all = logits.shape[1]
    fill = _NEG if hardest_high else -_NEG
    masked = logits.masked_fill(~valid, fill)
    if mode == 'hardest':
        kk = min(k, n_all)
        vals, idx = masked.topk(kk, dim=1, largest=hardest_high)
        return vals, valid.gather(1, idx)
    if mode != 'semi_hard':
        raise ValueError(f'unknown key sampling mode {mode!r}')
    n_valid = valid.sum(1)
    pool = torch.maximum(torch.ceil(n_valid * ratio).long(),
                         n_valid.clamp(max=k))
    pmax = min(n_all, max(int(math.ceil(n_all * ratio)), k))
    top, idx = masked.topk(pmax, dim=1, largest=hardest_high)  # sorted
    rnd = torch.rand(top.shape, device=top.device, generator=generator)
    ar = torch.arange(pmax, device=top.device)[None]
    rnd = rnd.masked_fill(ar >= pool[:, None], 2.0)
    kk = min(k, pmax)
    pick = rnd.topk(kk, dim=1, largest=False).indices
    keep = (pick < pool[:, None]) & valid.gather(1, idx.gather(1, pick))
    return top.gather(1, pick), keep


def memory_contrast(anchors: Tensor,
                    labels: Tensor,
                    queue,
                    temperature: float,
                    base_temperature: float,
                    key_sampling: str = 'all',
                    num_keys: int = 1024,
                    num_pos_keys: Optional[int] = None,
                    semi_hard_ratio: float = 0.1,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """Anchors (N, D) with labels (N,) against a class-wise bank.

    ``queue``: a :class:`PixelMemoryBank` (segment + pixel queues, unfilled
    slots ignored), a (C, M, D) tensor (all slots valid) or a list of
    ``(queue, filled)`` pairs. No copy of the bank is made.
    Returns the mean of :math:`L_i` over anchors with a positive (fp32).
    """
    check_generator('PixelContrastLoss', generator, anchors.device)
    queues = _as_queues(queue)
    if not queues:
        raise ValueError('PixelContrastLoss: empty queue list')
    C, _, D = queues[0][0].shape
    N = anchors.shape[0]
    if anchors.shape[1] != D:
        raise ValueError(
            f'PixelContrastLoss: embedding dim {anchors.shape[1]} does not '
            f'match the memory bank dim {D}')
    a = anchors.float()
    lab_ok = (labels >= 0) & (labels < C)
    y = torch.where(lab_ok, labels, torch.zeros_like(labels))
    # (N, C) own-class mask; F.one_hot would read min / max on the host
    own = (y[:, None] == torch.arange(C, device=y.device)) & lab_ok[:, None]
    with fp32_region(a.device):
        lse_blocks, pos_l, pos_m, negs = [], [], [], []
        for q, filled in queues:  # 2 queues (segment, pixel), not classes
            if q.shape[0] != C or q.shape[2] != D:
                raise ValueError(
                    'PixelContrastLoss: all queues must be (C, M, D) with the '
                    f'same C and D, got {tuple(q.shape)}')
            M = q.shape[1]
            if filled is None:
                filled = torch.ones(C, M, dtype=torch.bool, device=q.device)
            qf = q.reshape(C * M, D)
            if qf.dtype != torch.float32:
                qf = qf.float()
            bias = torch.zeros(C * M, device=a.device).masked_fill(
                ~filled.reshape(-1), _NEG)
            logits = torch.addmm(bias, a, qf.t(), alpha=1.0 / temperature)
            logits = logits.view(N, C, M)
            idx = y[:, None, None].expand(N, 1, M)
            pos_l.append(logits.gather(1, idx)[:, 0])
            pos_m.append(filled[y] & lab_ok[:, None])
            if key_sampling == 'all':
                lse_blocks.append(torch.logsumexp(logits, dim=2))  # (N, C)
            else:
                neg_valid = filled[None] & ~own[:, :, None]  # (N, C, M)
                negs.append((logits.reshape(N, C * M),
                             neg_valid.reshape(N, C * M)))
        pos = torch.cat(pos_l, 1)
        pmask = torch.cat(pos_m, 1)
        if key_sampling == 'all':
            lse_c = torch.logsumexp(torch.stack(lse_blocks), dim=0)
            neg_lse = torch.logsumexp(lse_c.masked_fill(own, _NEG), dim=1)
        else:
            kp = num_keys if num_pos_keys is None else num_pos_keys
            # top-k per queue, then across queues == global top-k
            cand_v, cand_m = [], []
            n_cols = sum(lg.shape[1] for lg, _ in negs)
            k_cand = num_keys if key_sampling == 'hardest' else max(
                int(math.ceil(n_cols * semi_hard_ratio)), num_keys)
            for lg, vm in negs:
                kk = min(lg.shape[1], k_cand)
                v, i = lg.masked_fill(~vm, _NEG).topk(kk, dim=1)
                cand_v.append(v)
                cand_m.append(vm.gather(1, i))
            nv = torch.cat(cand_v, 1)
            nm = torch.cat(cand_m, 1)
            if key_sampling == 'semi_hard':
                # the pool must be a fraction of ALL valid negatives
                n_valid = sum(vm.sum(1) for _, vm in negs)
                nv, nm = _semi_hard_from_candidates(
                    nv, nm, n_valid, num_keys, semi_hard_ratio, generator)
            else:
                nv, i = nv.masked_fill(~nm, _NEG).topk(
                    min(num_keys, nv.shape[1]), dim=1)
                nm = nm.gather(1, i)
            neg_lse = torch.logsumexp(nv.masked_fill(~nm, _NEG), dim=1)
            pos, pmask = select_keys(pos, pmask, kp, key_sampling,
                                     hardest_high=False,
                                     ratio=semi_hard_ratio,
                                     generator=generator)
        log_prob = pos - torch.logaddexp(pos, neg_lse[:, None])
        n_pos = pmask.sum(1)
        loss_r = -(log_prob * pmask).sum(1) / n_pos.clamp(min=1)
        loss_r = loss_r * (temperature / base_temperature)
        return _masked_row_mean(loss_r, n_pos > 0, a)


def _semi_hard_from_candidates(vals: Tensor, valid: Tensor, n_valid: Tensor,
                               k: int, ratio: float,
                               generator: Optional[torch.Generator]
                               ) -> Tuple[Tensor, Tensor]:
    """Semi-hard negatives from per-queue top candidates: sort the
    candidates, pool = max(ceil(ratio * n_valid), min(k, n_valid)) hardest,
    draw ``k`` of them uniformly without replacement."""
    masked = vals.masked_fill(~valid, _NEG)
    top, idx = masked.sort(dim=1, descending=True)
    tv = valid.gather(1, idx)
    pool = torch.maximum(torch.ceil(n_valid * ratio).long(),
                         n_valid.clamp(max=k))
    pool = torch.minimum(pool, tv.sum(1))
    rnd = torch.rand(top.shape, device=top.device, generator=generator)
    ar = torch.arange(top.shape[1], device=top.device)[None]
    rnd = rnd.masked_fill(ar >= pool[:, None], 2.0)
    pick = rnd.topk(min(k, top.shape[1]), dim=1, largest=False).indices
    keep = (pick < pool[:, None]) & tv.gather(1, pick)
    return top.gather(1, pick), keep
