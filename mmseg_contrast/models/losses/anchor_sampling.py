"""Hard anchor sampling of the pixel contrast loss (ContrastiveSeg
``_hard_anchor_sampling`` in ``lib/loss/loss_contrast.py``), vectorised.

The rule (rows, ``V``, hard / easy keep counts) is stated in
:mod:`~mmseg_contrast.models.losses.pixel_contrast_loss`; one host sync
(reading the number of rows ``T``, which sizes the sample: ``V`` and the
``(T, V, D)`` gather depend on it). Only integer counts are reduced over
pixels (no float sum); the sampled features keep ``embed``'s dtype.
"""
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from ..utils.device_utils import check_generator

__all__ = ['AnchorSamples', 'sample_anchors']

_LABEL_BITS = 24  # labels in [0, 2**24) are usable; others count as ignore


class AnchorSamples(NamedTuple):
    """Result of :func:`sample_anchors` (``T`` rows of ``n_view`` views).

    feats: (T, V, D) sampled embeddings (gradient-connected to ``embed``).
    labels: (T,) long class of each row.
    batch_idx: (T,) long image of each row.
    pixel_idx: (T, V) long flat index into the (h*w) map of that image.
    num_hard: (T,) long number of hard views (they come first in the row).
    n_view: int V.
    """
    feats: Tensor
    labels: Tensor
    batch_idx: Tensor
    pixel_idx: Tensor
    num_hard: Tensor
    n_view: int

    @property
    def num_rows(self) -> int:
        return self.labels.shape[0]


def _empty_samples(embed: Tensor) -> AnchorSamples:
    dev = embed.device
    z = torch.zeros(0, dtype=torch.long, device=dev)
    return AnchorSamples(
        embed.new_zeros(0, 0, embed.shape[1]), z, z.clone(),
        torch.zeros(0, 0, dtype=torch.long, device=dev), z.clone(), 0)


def sample_anchors(embed: Tensor,
                   labels: Tensor,
                   pred: Tensor,
                   max_samples: int = 1024,
                   max_views: int = 100,
                   ignore_index: int = 255,
                   generator: Optional[torch.Generator] = None,
                   num_classes: Optional[int] = None) -> AnchorSamples:
    """Segmentation-aware hard anchor sampling (reference
    ``_hard_anchor_sampling``), vectorised.

    Args:
        embed: (B, D, h, w) embeddings.
        labels: (B, h, w) long ground truth at embedding resolution.
        pred: (B, h, w) long prediction at embedding resolution.
        num_classes: when given, labels ``>= num_classes`` are ignored like
            ``ignore_index`` (they are no class of the model).

    One host sync (reading the number of rows). Rows: (image, class) pairs
    with more than ``max_views`` valid pixels, ordered by image then class;
    see the module docstring for the hard/easy keep counts. Returns an
    :class:`AnchorSamples`; with no rows its tensors are empty; with
    ``n_view == 0`` it holds the T rows' labels but no views.
    """
    B, D, h, w = embed.shape
    HW = h * w
    N = B * HW
    dev = embed.device
    check_generator('PixelContrastLoss', generator, dev)
    lab = labels.reshape(N).long()
    prd = pred.reshape(N).long()
    bound = (1 << _LABEL_BITS) if num_classes is None else min(
        int(num_classes), 1 << _LABEL_BITS)
    valid = (lab != ignore_index) & (lab >= 0) & (lab < bound)
    easy = valid & (prd == lab)
    hard = valid & ~easy
    b = torch.arange(B, device=dev).repeat_interleave(HW)
    gkey = (b << _LABEL_BITS) + torch.where(valid, lab, torch.zeros_like(lab))
    key = torch.where(valid, gkey * 2 + easy.long(),
                      torch.full_like(gkey, torch.iinfo(torch.long).max))
    # random order inside equal keys: random permutation, then stable sort
    perm = torch.argsort(torch.rand(N, device=dev, generator=generator))
    order = perm[torch.argsort(key[perm], stable=True)]
    ks = key[order]
    gk = ks >> 1
    new = torch.ones(N, dtype=torch.bool, device=dev)
    new[1:] = gk[1:] != gk[:-1]
    gid = torch.cumsum(new, 0) - 1  # group (image, class) id, sorted order
    valid_s, hard_s = valid[order], hard[order]
    ones = torch.ones(N, dtype=torch.long, device=dev)
    cnt_all = torch.zeros(N, dtype=torch.long, device=dev).scatter_add_(
        0, gid, ones)
    cnt = torch.zeros_like(cnt_all).scatter_add_(0, gid, valid_s.long())
    h_cnt = torch.zeros_like(cnt_all).scatter_add_(0, gid, hard_s.long())
    e_cnt = cnt - h_cnt
    start = torch.cumsum(cnt_all, 0) - cnt_all
    keep = cnt > max_views
    T = int(keep.sum())  # the single host sync
    if T == 0:
        return _empty_samples(embed)
    row = torch.cumsum(keep, 0) - 1
    # per-row metadata: scatter kept groups to their row (dump slot T)
    gvals = torch.zeros(N, dtype=torch.long, device=dev).scatter_(0, gid, gk)
    rdest = torch.where(keep, row, torch.full_like(row, T))
    V = min(max_samples // T, max_views)
    if V <= 0:  # more rows than max_samples: nothing to sample
        meta = torch.zeros(2, T + 1, dtype=torch.long, device=dev)
        meta.scatter_(1, rdest[None].expand(2, N),
                      torch.stack([gvals & ((1 << _LABEL_BITS) - 1),
                                   gvals >> _LABEL_BITS]))
        return AnchorSamples(
            embed.new_zeros(T, 0, D), meta[0, :T], meta[1, :T],
            torch.zeros(T, 0, dtype=torch.long, device=dev),
            torch.zeros(T, dtype=torch.long, device=dev), 0)
    half = V / 2
    hk = torch.where((h_cnt >= half) & (e_cnt >= half),
                     torch.full_like(h_cnt, V // 2),
                     torch.where(h_cnt >= half, V - e_cnt, h_cnt))
    ek = V - hk
    pos = torch.arange(N, device=dev) - start[gid]  # hard first in a group
    rank_e = pos - h_cnt[gid]
    hk_s, ek_s = hk[gid], ek[gid]
    take = keep[gid] & valid_s & torch.where(hard_s, pos < hk_s,
                                             rank_e < ek_s)
    slot = torch.where(hard_s, pos, hk_s + rank_e)
    dest = torch.where(take, row[gid] * V + slot, torch.full_like(slot, T * V))
    table = torch.zeros(T * V + 1, dtype=torch.long, device=dev)
    table.scatter_(0, dest, order)
    flat = table[:T * V].view(T, V)
    meta = torch.zeros(3, T + 1, dtype=torch.long, device=dev)
    meta.scatter_(1, rdest[None].expand(3, N),
                  torch.stack([gvals & ((1 << _LABEL_BITS) - 1),
                               gvals >> _LABEL_BITS, hk]))
    bi, pi = flat // HW, flat % HW
    feats = embed.flatten(2)[bi, :, pi]  # (T, V, D), no copy of the map
    return AnchorSamples(feats, meta[0, :T], meta[1, :T], pi, meta[2, :T], V)
