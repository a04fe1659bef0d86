r"""Supervised pixel contrast loss (ContrastiveSeg, Wang et al., ICCV'21).

Matches ``PixelContrastLoss`` of the released code (``tfzhou/ContrastiveSeg``
@287e5d3, ``lib/loss/loss_contrast.py`` l.30-147, in-batch; and
``lib/loss/loss_contrast_mem.py`` l.91-152, memory bank), vectorised.

**Anchor sampling** (:func:`sample_anchors`, reference
``_hard_anchor_sampling``). Labels are resized to the embedding size with
legacy ``'nearest'``. One *row* per (image, class) whose valid pixel count is
``> max_views``; rows ordered by image, then class ascending; ``T`` rows.
``V = n_view = min(max_samples // T, max_views)``. With ``h``/``e`` the
numbers of hard (GT = c, prediction != c) and easy pixels of the row:

* ``h >= V/2 and e >= V/2``: ``V // 2`` hard, ``V - V // 2`` easy;
* ``h >= V/2``: all ``e`` easy, ``V - e`` hard;
* otherwise: all ``h`` hard, ``V - h`` easy;

drawn uniformly without replacement; hard views first, then easy.

**In-batch loss** (reference ``_contrastive``). The ``N = T V`` sampled
views are both anchors and contrast samples; with cosine similarities
``s`` (embeddings are unit-norm), ``P(i)`` the other views of the same class
(any image) and ``N(i)`` the views of other classes:

.. math::

    L_i = -\frac{\tau}{\tau_b}\frac{1}{|P(i)|}\sum_{p\in P(i)}
          \log\frac{e^{s_{ip}/\tau}}{e^{s_{ip}/\tau}
          + \sum_{n\in N(i)} e^{s_{in}/\tau}},\qquad
    L = \operatorname{mean}_{i: |P(i)|>0} L_i

(one positive plus all negatives in the denominator, the paper's equation,
not SupCon's). Multiplied by ``loss_weight``.

**Memory mode** (``queue`` given; reference ``loss_contrast_mem.py``): the
anchors are contrasted only against the bank: ``P(i)`` = filled bank entries
(segment and pixel queues) of the anchor's class, ``N(i)`` = filled entries
of the other classes, same formula. The bank is never concatenated or
copied: per queue one ``addmm`` gives the (N, C*M) logits, per-class
``logsumexp`` blocks give the negative term and a ``gather`` the positives.
``key_sampling`` (paper §3.3, never released by the authors) restricts the
keys per anchor: ``'all'`` (reference), ``'hardest'`` (the ``num_keys`` most
similar negatives and the ``num_pos_keys`` least similar positives),
``'semi_hard'`` (``K`` drawn uniformly from the ``semi_hard_ratio`` = 10 %
hardest; the pool is widened to ``min(K, available)`` when 10 % holds fewer
than ``K``).

**Differences from the reference** (bugs listed in ``pixel_contrast.md``):

* no crash / NaN: ``T == 0`` (all-ignore or no class above ``max_views``),
  ``n_view == 0`` (``T > max_samples``) and anchors without any positive
  (``V == 1`` and a class in one row; a class absent from the bank) give a
  gradient-connected zero or are left out of the mean (the reference divides
  by zero); the denominator uses ``logaddexp`` instead of
  ``log(exp(x) + negsum)`` so fp16 underflow cannot give ``log(0)``;
* similarities are computed in fp32 with autocast disabled (the reference
  allocates fp32 on ``.cuda()`` only); any device;
* memory mode: class 0 is a real class (the reference drops it and pads the
  bank with all-zero rows of label 0, which add ``2M`` to every
  denominator), no ``logits_mask`` column drop against the queue, unfilled
  bank slots are ignored;
* the random draws are the same distribution, not the reference's RNG stream
  (the reference uses CPU ``randperm`` per class);
* with ``num_classes`` (set by the contrast heads) labels ``>= num_classes``
  are ignored like ``ignore_index``; the reference would contrast such a
  value as one more class (``LabelRangeCheckHook`` stops training on them
  before they reach the model).

The only host synchronisation is reading ``T`` (needed for the shape of the
sample).
"""
import math
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

__all__ = [
    'PixelContrastLoss', 'AnchorSamples', 'sample_anchors',
    'in_batch_contrast', 'memory_contrast', 'select_keys'
]

# finite stand-in for -inf: keeps logsumexp gradients finite when a row has
# no negatives at all (exp(-1e30 - x) == 0 in fp32)
_NEG = -1e30
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
    with torch.autocast(device_type=f.device.type, enabled=False):
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
    own = F.one_hot(y, C).bool() & lab_ok[:, None]  # (N, C)
    with torch.autocast(device_type=a.device.type, enabled=False):
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


@MODELS.register_module()
class PixelContrastLoss(nn.Module):
    """ContrastiveSeg pixel contrast loss; see the module docstring for the
    formula, the sampling rules and what differs from the reference.

    Args:
        temperature (float): tau. Default 0.1.
        base_temperature (float): tau_b; the loss is scaled by tau / tau_b.
            Default 0.07.
        max_samples (int): max anchor views per call (per GPU). Default 1024.
        max_views (int): max views per (image, class) row, and the row
            threshold (a class needs > max_views pixels). Default 100.
        ignore_index (int): ignored label. Default 255.
        num_classes (int, optional): labels ``>= num_classes`` are ignored
            too (the reference would contrast them as a class). The contrast
            heads set it to their ``num_classes``. Default None (no bound).
        loss_weight (float): multiplier. Default 1.0.
        loss_name (str): key in the loss dict. Default ``'loss_contrast'``.
        key_sampling (str): memory mode only: ``'all'``, ``'hardest'`` or
            ``'semi_hard'``. Default ``'all'`` (the reference).
        num_keys (int): negatives kept per anchor by ``'hardest'`` /
            ``'semi_hard'``. Default 1024.
        num_pos_keys (int, optional): positives kept per anchor; defaults to
            ``num_keys``.
        semi_hard_ratio (float): the hardest fraction sampled from by
            ``'semi_hard'``. Default 0.1.

    ``forward(embed, seg_label, seg_pred, queue=None)``:
        embed (B, D, h, w) L2-normalised; seg_label (B, H, W) long at full
        resolution (resized here with nearest); seg_pred (B, h, w) long at
        embedding resolution; queue (alias memory_bank): a
        ``PixelMemoryBank`` (or (C, M, D) tensor) for memory mode.
    """

    def __init__(self,
                 temperature: float = 0.1,
                 base_temperature: float = 0.07,
                 max_samples: int = 1024,
                 max_views: int = 100,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_contrast',
                 key_sampling: str = 'all',
                 num_keys: int = 1024,
                 num_pos_keys: Optional[int] = None,
                 semi_hard_ratio: float = 0.1,
                 num_classes: Optional[int] = None):
        super().__init__()
        if num_classes is not None and (not isinstance(num_classes, int)
                                        or num_classes < 1):
            raise ValueError('PixelContrastLoss: num_classes must be None or '
                             f'a positive int, got {num_classes!r}')
        self.num_classes = num_classes
        if not temperature > 0 or not base_temperature > 0:
            raise ValueError('PixelContrastLoss: temperature and '
                             'base_temperature must be > 0, got '
                             f'{temperature}, {base_temperature}')
        if int(max_samples) < 1 or int(max_views) < 1:
            raise ValueError('PixelContrastLoss: max_samples and max_views '
                             f'must be >= 1, got {max_samples}, {max_views}')
        if key_sampling not in ('all', 'hardest', 'semi_hard'):
            raise ValueError(
                "PixelContrastLoss: key_sampling must be 'all', 'hardest' or "
                f"'semi_hard', got {key_sampling!r}")
        if int(num_keys) < 1 or (num_pos_keys is not None
                                 and int(num_pos_keys) < 1):
            raise ValueError('PixelContrastLoss: num_keys / num_pos_keys '
                             'must be >= 1')
        if not 0 < semi_hard_ratio <= 1:
            raise ValueError('PixelContrastLoss: semi_hard_ratio must be in '
                             f'(0, 1], got {semi_hard_ratio}')
        self.temperature = float(temperature)
        self.base_temperature = float(base_temperature)
        self.max_samples = int(max_samples)
        self.max_views = int(max_views)
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.key_sampling = key_sampling
        self.num_keys = int(num_keys)
        self.num_pos_keys = None if num_pos_keys is None else int(num_pos_keys)
        self.semi_hard_ratio = float(semi_hard_ratio)
        # filled by forward (host ints, no extra sync): rows T and views V
        self.last_num_rows = 0
        self.last_n_view = 0

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'temperature={self.temperature}, '
                f'base_temperature={self.base_temperature}, '
                f'max_samples={self.max_samples}, '
                f'max_views={self.max_views}, '
                f'ignore_index={self.ignore_index}, '
                f'num_classes={self.num_classes}, '
                f'key_sampling={self.key_sampling!r}')

    def _check(self, embed: Tensor, seg_label: Tensor,
               seg_pred: Tensor) -> Tuple[Tensor, Tensor]:
        if not isinstance(embed, Tensor) or embed.dim() != 4:
            raise ValueError('PixelContrastLoss: embed must be (B, D, h, w), '
                             f'got {getattr(embed, "shape", type(embed))}')
        B, _, h, w = embed.shape
        if seg_label.dim() == 4 and seg_label.shape[1] == 1:
            seg_label = seg_label[:, 0]
        if seg_label.dim() != 3 or seg_label.shape[0] != B:
            raise ValueError('PixelContrastLoss: seg_label must be (B, H, W) '
                             f'with B={B}, got {tuple(seg_label.shape)}')
        if seg_label.is_floating_point() or seg_pred.is_floating_point():
            raise ValueError('PixelContrastLoss: seg_label and seg_pred must '
                             'be integer tensors (class ids), got '
                             f'{seg_label.dtype} and {seg_pred.dtype}')
        if seg_pred.dim() == 4 and seg_pred.shape[1] == 1:
            seg_pred = seg_pred[:, 0]
        if tuple(seg_pred.shape) != (B, h, w):
            raise ValueError(
                'PixelContrastLoss: seg_pred must be (B, h, w) at the '
                f'embedding resolution {(B, h, w)}, got '
                f'{tuple(seg_pred.shape)} (resize the logits before argmax)')
        return seg_label, seg_pred

    def forward(self,
                embed: Tensor,
                seg_label: Tensor,
                seg_pred: Tensor,
                queue=None,
                memory_bank=None,
                generator: Optional[torch.Generator] = None) -> Tensor:
        """Loss value (fp32 scalar, ``loss_weight`` applied).

        ``queue`` / ``memory_bank`` (aliases): the bank for memory mode.
        """
        if queue is not None and memory_bank is not None:
            raise ValueError('PixelContrastLoss: pass the bank as queue= or '
                             'memory_bank=, not both')
        if queue is None:
            queue = memory_bank
        seg_label, seg_pred = self._check(embed, seg_label, seg_pred)
        h, w = embed.shape[-2:]
        if tuple(seg_label.shape[-2:]) != (h, w):
            # legacy 'nearest' exactly as the reference
            seg_label = F.interpolate(
                seg_label[:, None].float(), size=(h, w),
                mode='nearest')[:, 0].long()
        samples = sample_anchors(embed, seg_label, seg_pred, self.max_samples,
                                 self.max_views, self.ignore_index, generator,
                                 num_classes=self.num_classes)
        self.last_num_rows = samples.num_rows
        self.last_n_view = samples.n_view
        if samples.num_rows == 0 or samples.n_view == 0:
            return embed.float().sum() * 0.0
        if queue is None:
            loss = in_batch_contrast(samples.feats, samples.labels,
                                     self.temperature, self.base_temperature)
        else:
            T, V, D = samples.feats.shape
            loss = memory_contrast(
                samples.feats.reshape(T * V, D),
                samples.labels.repeat_interleave(V), queue, self.temperature,
                self.base_temperature, self.key_sampling, self.num_keys,
                self.num_pos_keys, self.semi_hard_ratio, generator)
        return self.loss_weight * loss
