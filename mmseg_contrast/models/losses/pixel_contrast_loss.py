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

**Precision.** Every sum over pixels or views (similarities, log-sum-exps,
means over anchors, the bank's logits) is accumulated in fp32 with autocast
off, whatever the dtype of ``embed`` (fp16 / bf16 embeddings, an fp16 bank)
and the caller's autocast; the loss is an fp32 scalar, the sampled views
keep ``embed``'s dtype.

**Host syncs.** ONE per forward + backward, in-batch and memory mode alike:
reading ``T`` (:func:`sample_anchors`; it sizes the sample). The contrast
terms, the key mining and the backward have none.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ...options import (
    check_finite_nonneg,
    check_int,
    check_optional,
    check_positive,
    check_positive_int,
    check_probability,
)
from .anchor_sampling import AnchorSamples, sample_anchors
from .contrast_terms import in_batch_contrast, memory_contrast, select_keys

__all__ = [
    'PixelContrastLoss', 'AnchorSamples', 'sample_anchors',
    'in_batch_contrast', 'memory_contrast', 'select_keys'
]


@MODELS.register_module()
class PixelContrastLoss(nn.Module):
    """ContrastiveSeg pixel contrast loss; see the module docstring for the
    formula, the sampling rules and what differs from the reference.

    Args (checked when built, see :mod:`mmseg_contrast.options`):
        temperature (float): tau, finite and > 0. Default 0.1.
        base_temperature (float): tau_b, finite and > 0; the loss is
            scaled by tau / tau_b. Default 0.07.
        max_samples (int): max anchor views per call (per GPU), >= 1.
            Default 1024.
        max_views (int): max views per (image, class) row, and the row
            threshold (a class needs > max_views pixels), >= 1. Default 100.
        ignore_index (int): ignored label (any int). Default 255.
        num_classes (int, optional): labels ``>= num_classes`` are ignored
            too (the reference would contrast them as a class); >= 1. The
            contrast heads set it to their ``num_classes``. Default None (no
            bound).
        loss_weight (float): multiplier, finite and >= 0 (0 gives a zero
            term). Default 1.0.
        loss_name (str): key in the loss dict. Default ``'loss_contrast'``.
        key_sampling (str): memory mode only: ``'all'``, ``'hardest'`` or
            ``'semi_hard'``. Default ``'all'`` (the reference).
        num_keys (int): negatives kept per anchor by ``'hardest'`` /
            ``'semi_hard'``, >= 1. Default 1024.
        num_pos_keys (int, optional): positives kept per anchor, >= 1;
            defaults to ``num_keys``.
        semi_hard_ratio (float): the hardest fraction sampled from by
            ``'semi_hard'``, in (0, 1] (1: all keys). Default 0.1.

    fp32 accumulation, one host sync per forward + backward (module
    docstring). A ``generator`` must be on ``embed``'s device
    (``ValueError`` otherwise).

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
        owner = type(self).__name__
        check_positive(owner, 'temperature', temperature)
        check_positive(owner, 'base_temperature', base_temperature)
        check_positive_int(owner, 'max_samples', max_samples)
        check_positive_int(owner, 'max_views', max_views)
        check_int(owner, 'ignore_index', ignore_index)
        check_finite_nonneg(owner, 'loss_weight', loss_weight)
        if key_sampling not in ('all', 'hardest', 'semi_hard'):
            raise ValueError(
                "PixelContrastLoss: key_sampling must be 'all', 'hardest' or "
                f"'semi_hard', got {key_sampling!r}")
        check_positive_int(owner, 'num_keys', num_keys)
        check_optional(check_positive_int, owner, 'num_pos_keys',
                       num_pos_keys)
        check_probability(owner, 'semi_hard_ratio', semi_hard_ratio)
        check_optional(check_positive_int, owner, 'num_classes', num_classes)
        self.num_classes = num_classes
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
