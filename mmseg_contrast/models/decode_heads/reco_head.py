"""Supervised ReCo heads: CE (+ whatever ``loss_decode`` says) + ``ReCoLoss``
on any stock mmseg decode head by a ``type`` swap.

Usage (supervised ReCo, Liu et al. ICLR'22, ``train_sup.py``)::

    model = dict(decode_head=dict(
        type='ReCoDepthwiseSeparableASPPHead',  # DepthwiseSeparableASPPHead
        proj_channels=256,
        reco_loss=dict(type='ReCoLoss', temperature=0.5, num_queries=256,
                       num_negatives=512, strong_threshold=0.97)))

During ``loss()`` the head captures the pre-classifier feature ``feat`` and
the logits at ``cls_seg`` (:class:`AuxEmbeddingMixin`), projects ``feat``
with the ReCo representation head (conv3x3-BN-ReLU-conv1x1, 256-d, raw
output), downsamples the ground truth to the representation resolution with
(legacy) nearest, takes ``prob = softmax(logits)`` (detached, resized to the
representation resolution if the head's logits differ) and adds
``losses['loss_reco']``. ``forward()`` still returns the logits, so
inference, slide mode and checkpoints loading into the plain head (the extra
``reco_proj.*`` keys are simply unexpected) are untouched.

Interface for semi-supervised segmentors (mean teacher + ReCo)
---------------------------------------------------------------
ReCo pools labelled and unlabelled pixels in ONE loss call, but the student
runs separate forward passes (separate BN statistics). Two hooks support
that:

* ``with head.deferred_reco() as cache:`` -- every ``head.loss(...)`` inside
  the block returns only the stock losses (CE, ...) and appends its captured
  ``(feat, logits)`` to ``cache`` (a list), in call order.
* ``head.reco_loss_from(feats, seg_logits, labels, valid_masks=None,
  generator=None) -> Tensor`` -- the ReCo loss (already weighted by
  ``loss_weight``) from features, logits and labels. Each argument may be a
  tensor or a list of per-forward tensors (one entry per ``cache`` item);
  every part is projected separately (its own BN batch) and the parts are
  concatenated along the batch axis before the loss, like the reference's
  ``cat(rep_l, rep_u)``. ``labels`` are ``(B, H, W)`` long at any
  resolution (image resolution is typical; pseudo-labels from the teacher
  are fine) with ``self.ignore_index`` for invalid pixels; ``valid_masks``
  (optional, bool ``(B, H, W)``, same resolution as ``labels``) marks the
  pixels allowed to take part, e.g. ``teacher_confidence >= 0.7`` for
  unlabelled images -- ``False`` pixels are treated as ignore. Use the loss
  name ``head.reco_loss.loss_name`` for the returned value.

Example inside a segmentor's ``loss()``::

    head = student.decode_head
    with head.deferred_reco() as cache:
        sup = student.loss(x_l, ds_l)         # CE on labelled
        unsup = student.loss(x_u_mix, ds_u)   # CE on pseudo-labels
    (f_l, z_l), (f_u, z_u) = cache
    losses[head.reco_loss.loss_name] = head.reco_loss_from(
        [f_l, f_u], [z_l, z_u], [gt_l, pseudo_u],
        valid_masks=[gt_l != 255, conf_u >= 0.7])

Differences from the reference model: mmseg's heads differ from ReCo's
DeepLabV3+ (see reco.md §2); the representation head here sits on the
feature that enters ``cls_seg`` (e.g. the 512-channel separable bottleneck
output of ``DepthwiseSeparableASPPHead``), while the reference's sits on the
304-channel decoder concat parallel to its classifier's 3x3 conv.
"""
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.models.decode_heads import (
    ASPPHead,
    DepthwiseSeparableASPPHead,
    FCNHead,
    PSPHead,
    SegformerHead,
    UPerHead,
)
from mmseg.registry import MODELS
from torch import Tensor

from ...options import check_positive_int
from .aux_embedding_mixin import AuxEmbeddingMixin, ProjectionHead

TensorOrList = Union[Tensor, Sequence[Tensor]]


def _as_list(x, name: str) -> List:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)) and len(x) > 0:
        return list(x)
    raise TypeError(f'{name} must be a Tensor or a non-empty list of '
                    f'Tensors, got {type(x).__name__}')


def downsample_labels(labels: Tensor, size) -> Tensor:
    """(B, H, W) integer labels -> (B, h, w) with legacy ``'nearest'`` (as
    the ReCo reference: ``src = floor(dst * in / out)``)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(
        labels.unsqueeze(1).float(), size=tuple(size),
        mode='nearest').squeeze(1).to(labels.dtype)


class ReCoMixin(AuxEmbeddingMixin):
    """Adds a ReCo representation head and ``ReCoLoss`` to a stock head.

    Args:
        proj_channels (int): representation dimension, >= 1 (checked when
            built). Default 256.
        reco_loss (dict): config of the ReCo loss. Default
            ``dict(type='ReCoLoss')`` (tau 0.5, Q 256, N 512, 0.97).
        All other arguments go to the stock head.
    """

    def __init__(self,
                 *args,
                 proj_channels: int = 256,
                 reco_loss: dict = dict(type='ReCoLoss'),
                 **kwargs):
        super().__init__(*args, **kwargs)
        check_positive_int(type(self).__name__, 'proj_channels',
                           proj_channels)
        self.reco_proj = ProjectionHead(
            self.channels, proj_channels, kind='reco',
            norm_cfg=self.norm_cfg)
        self.reco_loss = MODELS.build(reco_loss)
        if 'loss' not in self.reco_loss.loss_name:
            raise ValueError(
                f'{type(self).__name__}: reco_loss.loss_name must contain '
                f"'loss' to be optimised, got {self.reco_loss.loss_name!r}")
        self._reco_deferred: Optional[list] = None

    @contextmanager
    def deferred_reco(self):
        """Within the block ``loss()`` skips ReCo and appends the captured
        ``(feat, logits)`` of every call to the yielded list."""
        cache: list = []
        prev, self._reco_deferred = self._reco_deferred, cache
        try:
            yield cache
        finally:
            self._reco_deferred = prev

    def aux_losses(self, feat: Tensor, seg_logits: Tensor,
                   batch_data_samples) -> Dict[str, Tensor]:
        if self._reco_deferred is not None:
            self._reco_deferred.append((feat, seg_logits))
            return {}
        labels = self.stack_gt(batch_data_samples)
        return {
            self.reco_loss.loss_name:
            self.reco_loss_from(feat, seg_logits, labels)
        }

    def reco_loss_from(self,
                       feats: TensorOrList,
                       seg_logits: TensorOrList,
                       labels: TensorOrList,
                       valid_masks: Optional[TensorOrList] = None,
                       generator: Optional[torch.Generator] = None
                       ) -> Tensor:
        """ReCo loss from captured features/logits and (pseudo-)labels.

        See the module docstring. Returns a scalar tensor (weighted).
        """
        feats = _as_list(feats, 'feats')
        seg_logits = _as_list(seg_logits, 'seg_logits')
        labels = _as_list(labels, 'labels')
        n = len(feats)
        if valid_masks is None:
            valid_masks = [None] * n
        else:
            valid_masks = _as_list(valid_masks, 'valid_masks')
        if not (len(seg_logits) == len(labels) == len(valid_masks) == n):
            raise ValueError(
                f'{type(self).__name__}.reco_loss_from: feats, seg_logits, '
                f'labels and valid_masks need the same number of parts, got '
                f'{n}, {len(seg_logits)}, {len(labels)}, {len(valid_masks)}')
        reps, labs, probs = [], [], []
        loss_ignore = self.reco_loss.ignore_index
        for f, z, y, m in zip(feats, seg_logits, labels, valid_masks):
            rep = self.reco_proj(f)
            size = rep.shape[-2:]
            if y.dim() == 4 and y.shape[1] == 1:
                y = y.squeeze(1)
            if y.dim() != 3 or y.shape[0] != rep.shape[0]:
                raise ValueError(
                    f'{type(self).__name__}.reco_loss_from: labels must be '
                    f'(B, H, W) with B={rep.shape[0]}, got {tuple(y.shape)}')
            y = y.long()
            if m is not None:
                if m.dim() == 4 and m.shape[1] == 1:
                    m = m.squeeze(1)
                if tuple(m.shape) != tuple(y.shape):
                    raise ValueError(
                        f'{type(self).__name__}.reco_loss_from: valid_masks '
                        f'must match labels {tuple(y.shape)}, got '
                        f'{tuple(m.shape)}')
                y = y.masked_fill(~m.bool(), self.ignore_index)
            y = downsample_labels(y, size)
            if loss_ignore != self.ignore_index:
                y = y.masked_fill(y == self.ignore_index, loss_ignore)
            with torch.no_grad():
                z = z.detach().float()
                if tuple(z.shape[-2:]) != tuple(size):
                    z = F.interpolate(
                        z, size=size, mode='bilinear',
                        align_corners=self.align_corners)
                p = torch.softmax(z, dim=1)
            reps.append(rep)
            labs.append(y)
            probs.append(p)
        rep = reps[0] if n == 1 else torch.cat(reps)
        lab = labs[0] if n == 1 else torch.cat(labs)
        prob = probs[0] if n == 1 else torch.cat(probs)
        return self.reco_loss(rep, lab, prob, generator=generator)


@MODELS.register_module()
class ReCoASPPHead(ReCoMixin, ASPPHead):
    """DeepLabV3 ``ASPPHead`` + ReCo."""


@MODELS.register_module()
class ReCoDepthwiseSeparableASPPHead(ReCoMixin, DepthwiseSeparableASPPHead):
    """DeepLabV3+ ``DepthwiseSeparableASPPHead`` + ReCo."""


@MODELS.register_module()
class ReCoFCNHead(ReCoMixin, FCNHead):
    """``FCNHead`` (e.g. HRNet) + ReCo."""


@MODELS.register_module()
class ReCoPSPHead(ReCoMixin, PSPHead):
    """``PSPHead`` + ReCo."""


@MODELS.register_module()
class ReCoUPerHead(ReCoMixin, UPerHead):
    """``UPerHead`` + ReCo."""


@MODELS.register_module()
class ReCoSegformerHead(ReCoMixin, SegformerHead):
    """``SegformerHead`` + ReCo."""
