"""Shared machinery for heads that add an embedding-based loss to any stock
mmseg decode head by a ``type`` swap.

The mixin keeps ``forward()`` returning the logits tensor (so inference, slide
mode, TTA, ``mode='tensor'``, export and OCRNet's cascade are untouched). Every
stock head ends in ``cls_seg(feat)``; during ``loss()`` the mixin records the
pre-classifier feature and the logits there (and the head's transformed
input, see :meth:`AuxEmbeddingMixin.aux_feature`), and afterwards calls
:meth:`AuxEmbeddingMixin.aux_losses`, which subclasses implement (pixel
contrast, ReCo, ...). At inference nothing extra is computed.

A new contrast head for another stock head is one line::

    @MODELS.register_module()
    class ContrastPSPHead(PixelContrastMixin, PSPHead):
        pass
"""
from typing import Dict, Optional

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor


class ProjectionHead(nn.Module):
    """Embedding head (on the pre-classifier feature or the head's input).

    ``kind='mlp'`` (ContrastiveSeg, Wang et al. ICCV'21):
    conv1x1 -> BN -> ReLU -> conv1x1, output L2-normalised.
    ``kind='reco'`` (ReCo, Liu et al. ICLR'22 representation head):
    conv3x3 -> BN -> ReLU -> conv1x1, raw output (ReCo normalises inside the
    loss).
    """

    def __init__(self,
                 in_channels: int,
                 proj_channels: int = 256,
                 kind: str = 'mlp',
                 norm_cfg: Optional[dict] = None,
                 normalize: Optional[bool] = None):
        super().__init__()
        if kind not in ('mlp', 'reco'):
            raise ValueError(f"ProjectionHead kind must be 'mlp' or 'reco', "
                             f'got {kind!r}')
        if norm_cfg is None:
            norm_cfg = dict(type='BN', requires_grad=True)
        k = 1 if kind == 'mlp' else 3
        self.kind = kind
        self.normalize = (kind == 'mlp') if normalize is None else normalize
        self.layers = nn.Sequential(
            ConvModule(
                in_channels,
                in_channels if kind == 'mlp' else proj_channels,
                k,
                padding=k // 2,
                norm_cfg=norm_cfg,
                act_cfg=dict(type='ReLU')),
            nn.Conv2d(in_channels if kind == 'mlp' else proj_channels,
                      proj_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(x)
        if self.normalize:
            x = F.normalize(x, p=2, dim=1)
        return x


class AuxEmbeddingMixin:
    """Mixin for ``BaseDecodeHead`` subclasses; put it first in the bases.

    Subclasses implement ``aux_losses(feat, seg_logits, batch_data_samples)``
    returning a dict of extra losses (keys containing ``'loss'`` are summed by
    mmengine; diagnostics must not contain ``'loss'``).
    """

    _aux_capture = False
    _aux_cache = None
    _aux_head_input = None

    def _transform_inputs(self, inputs):
        x = super()._transform_inputs(inputs)
        if self._aux_capture:
            self._aux_head_input = x
        return x

    def cls_seg(self, feat: Tensor) -> Tensor:
        logits = super().cls_seg(feat)
        if self._aux_capture:
            self._aux_cache = (feat, logits)
        return logits

    def aux_feature(self, feat: Tensor, head_input) -> Tensor:
        """The feature handed to :meth:`aux_losses`.

        ``feat`` is what the head fed to ``cls_seg``; ``head_input`` is the
        head's ``_transform_inputs(inputs)`` (e.g. the backbone's last stage
        for ASPP heads, the resized concat of all stages for
        ``input_transform='resize_concat'``). Default: ``feat``.
        """
        return feat

    def aux_losses(self, feat: Tensor, seg_logits: Tensor,
                   batch_data_samples) -> Dict[str, Tensor]:
        raise NotImplementedError

    def loss(self, *args, **kwargs) -> dict:
        # BaseDecodeHead.loss(inputs, batch_data_samples, train_cfg)
        # BaseCascadeDecodeHead.loss(inputs, prev_output, batch_data_samples,
        #                            train_cfg)
        if 'batch_data_samples' in kwargs:
            batch_data_samples = kwargs['batch_data_samples']
        elif len(args) >= 2:
            batch_data_samples = args[-2]
        else:
            raise TypeError(
                f'{type(self).__name__}.loss() could not find '
                f'batch_data_samples in its arguments')
        self._aux_capture, self._aux_cache = True, None
        self._aux_head_input = None
        try:
            losses = super().loss(*args, **kwargs)
        finally:
            self._aux_capture = False
        cache, self._aux_cache = self._aux_cache, None
        head_input, self._aux_head_input = self._aux_head_input, None
        if cache is None:
            raise RuntimeError(
                f'{type(self).__name__}: the head never called cls_seg() '
                f'during loss(); the auxiliary embedding mixin needs a head '
                f'whose forward() ends in cls_seg(feat).')
        feat, logits = cache
        feat = self.aux_feature(feat, head_input)
        losses.update(self.aux_losses(feat, logits, batch_data_samples))
        return losses

    def stack_gt(self, batch_data_samples) -> Tensor:
        """(B, H, W) long ground truth, padded like ``_stack_batch_gt``."""
        return self._stack_batch_gt(batch_data_samples).squeeze(1)
