"""Supervised pixel contrast (ContrastiveSeg) for any stock mmseg decode head.

Wang, Zhou et al., "Exploring Cross-Image Pixel Contrast for Semantic
Segmentation", ICCV 2021 (reference code ``tfzhou/ContrastiveSeg``).

The contrast heads are the stock mmseg heads with :class:`PixelContrastMixin`
in front of them, selected by a ``type`` swap in the config::

    model = dict(decode_head=dict(type='ContrastASPPHead', proj_channels=256,
                                  contrast_loss=dict(type='PixelContrastLoss',
                                                     loss_weight=0.1)))

``forward()`` still returns the logits tensor, so inference, slide mode,
TTA, ``mode='tensor'``, export and OCRNet's cascade are untouched, and a
contrast-trained checkpoint loads into the plain mmseg config (the extra
``proj_head.*`` parameters and ``memory_bank.*`` buffers are unexpected keys).

Training-time branch (``loss()`` only), on the projection input ``f``
(``proj_in``, below):

* ``embed = normalize(conv1x1(relu(bn(conv1x1(f)))))`` (reference
  ``ProjectionHead(proj='convmlp')``), ``proj_channels`` (256) channels;
* ``seg_pred = argmax(logits)`` at the logits resolution, as in the
  reference (``torch.max(seg, 1)[1]`` on the non-upsampled logits), taken at
  the embedding's resolution (nearest) if the two differ (DeepLabV3+ with
  ``proj_in='backbone'``, not in the reference);
* ``loss_contrast = scale * PixelContrastLoss(embed, gt, seg_pred)`` in-batch,
  or against ``memory_bank`` in memory mode. ``scale`` is
  :attr:`PixelContrastMixin.contrast_weight_scale`, set by
  :class:`~mmseg_contrast.engine.hooks.ContrastWarmupHook` (0 during warm-up,
  1 afterwards) on every rank, so unlike the reference the term is applied
  on a single process too. The loss's ``ignore_index`` is the head's.

Projection input (``proj_in``):

* ``'backbone'`` (the paper configs): the head's transformed backbone input,
  which is the reference's: layer4 (2048 ch) for DeepLabV3/V3+
  (``DeepLabV3Contrast``), the resized concat of the HRNet branches (720 ch)
  for HRNet-FCN and OCRNet (``HRNet_W48_CONTRAST`` and
  ``HRNet_W48_OCR_CONTRAST`` project ``feats`` before ``cls_head`` /
  ``conv3x3``); the authors' contrast checkpoints hold a projection head of
  exactly this width;
* ``'pre_classifier'`` (default): the feature the head feeds to ``cls_seg``
  (``channels`` wide), which is **not** the reference's for any of the
  heads: the 512-ch ASPP bottleneck for DeepLabV3, one conv + BN + ReLU after
  the concat for HRNet-FCN, the OCR-augmented feature for OCRNet.

Differences from the reference, on purpose:

* during warm-up (scale 0) the loss is not computed at all; a zero that is
  connected to every projection parameter is returned so that DDP without
  ``find_unused_parameters`` still sees every parameter used (the reference
  computes the full loss and multiplies it by 0);
* in memory mode the keys are enqueued after the optimizer step by
  :class:`~mmseg_contrast.engine.hooks.PixelMemoryBankHook` (MoCo order);
  keys are stashed during warm-up too, so the bank is full when the term
  switches on (the reference enqueues from iteration 0 as well).
"""
import warnings
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.decode_heads import (
    ASPPHead,
    DepthwiseSeparableASPPHead,
    FCNHead,
    OCRHead,
)
from mmseg.registry import MODELS
from torch import Tensor

from ...options import check_positive_int
from ..utils.head_checks import (
    bind_loss_num_classes,
    memory_bank_cfg_for_head,
    missing_bank_consumer_error,
)
from .aux_embedding_mixin import AuxEmbeddingMixin, ProjectionHead


class PixelContrastMixin(AuxEmbeddingMixin):
    """Adds the pixel-contrast branch to a stock ``BaseDecodeHead``.

    Put it first in the bases: ``class ContrastXHead(PixelContrastMixin,
    XHead)``. The stock head must end its ``forward()`` in
    ``self.cls_seg(feat)`` (all mmseg heads do).

    Args:
        proj_channels (int): width of the L2-normalised embedding, >= 1
            (checked when built). Default 256.
        contrast_loss (dict): config of the contrast loss, called as
            ``loss(embed, seg_label, seg_pred)`` (in-batch) or
            ``loss(embed, seg_label, seg_pred, memory_bank=bank)`` (memory
            mode). Its ``loss_weight`` is the weight after warm-up.
        memory_bank (dict, optional): config of a ``PixelMemoryBank``
            (``num_classes``, ``feat_dim`` and ``ignore_index`` default to,
            and must equal, the head's ``num_classes``, ``proj_channels``
            and ``ignore_index``); when given the loss contrasts the anchors
            against the bank, and the
            detached keys and labels of each step are kept for
            ``PixelMemoryBankHook`` to enqueue after the optimizer step
            (a training step without that hook raises).
        proj_norm_cfg (dict, optional): norm layer of the projection head;
            defaults to the head's ``norm_cfg`` (BN if the head has none).
        proj_in (str): what the projection head embeds.
            ``'pre_classifier'`` (default): the feature the head feeds to
            ``cls_seg`` (``channels`` wide). ``'backbone'``: the head's
            transformed backbone input (``in_channels`` wide), i.e. the
            reference's projection input: the last backbone stage for
            DeepLabV3/V3+ (2048 ch, ``DeepLabV3Contrast``), the resized
            concat of the four HRNet branches for HRNet-FCN and OCRNet
            (720 ch, ``HRNet_W48_CONTRAST`` / ``HRNet_W48_OCR_CONTRAST``).

    The contrast loss's ``ignore_index`` defaults to the head's; a config
    that sets a different one is refused.
    """

    PROJ_INPUTS = ('pre_classifier', 'backbone')

    def __init__(self,
                 *args,
                 proj_channels: int = 256,
                 contrast_loss: dict = dict(type='PixelContrastLoss'),
                 memory_bank: Optional[dict] = None,
                 proj_norm_cfg: Optional[dict] = None,
                 proj_in: str = 'pre_classifier',
                 **kwargs):
        super().__init__(*args, **kwargs)
        name = type(self).__name__
        check_positive_int(name, 'proj_channels', proj_channels)
        if not isinstance(contrast_loss, dict):
            raise TypeError(f'{name}: contrast_loss must be a '
                            f'config dict, got {type(contrast_loss).__name__}')
        if proj_in not in self.PROJ_INPUTS:
            raise ValueError(f'{name}: proj_in must be one of '
                             f'{self.PROJ_INPUTS}, got {proj_in!r}')
        if proj_in == 'backbone' and not isinstance(self.in_channels, int):
            raise ValueError(
                f"{name}: proj_in='backbone' needs a single head input, but "
                f'in_channels={self.in_channels!r} (input_transform='
                f"{self.input_transform!r}); use input_transform="
                f"'resize_concat' or None, or proj_in='pre_classifier'")
        self.proj_in = proj_in
        if proj_norm_cfg is None:
            proj_norm_cfg = self.norm_cfg or dict(type='BN',
                                                  requires_grad=True)
        self.proj_head = ProjectionHead(
            self.in_channels if proj_in == 'backbone' else self.channels,
            proj_channels, kind='mlp', norm_cfg=proj_norm_cfg)
        contrast_loss = dict(contrast_loss)
        loss_ignore = contrast_loss.setdefault('ignore_index',
                                               self.ignore_index)
        if loss_ignore != self.ignore_index:
            raise ValueError(
                f'{name}: contrast_loss.ignore_index={loss_ignore} differs '
                f'from the head\'s ignore_index={self.ignore_index}; the '
                f'loss would sample ignored pixels as a class. Drop '
                f'contrast_loss.ignore_index (it defaults to the head\'s) or '
                f'make them equal.')
        self.contrast_loss = MODELS.build(contrast_loss)
        bind_loss_num_classes(type(self).__name__, self.contrast_loss,
                              self.num_classes)
        if memory_bank is not None:
            if not isinstance(memory_bank, dict):
                raise TypeError(f'{type(self).__name__}: memory_bank must be '
                                f'None or a config dict, got '
                                f'{type(memory_bank).__name__}')
            memory_bank = memory_bank_cfg_for_head(
                type(self).__name__, memory_bank, self.num_classes,
                proj_channels, self.ignore_index)
            self.memory_bank = MODELS.build(memory_bank)
        else:
            self.memory_bank = None
        # Multiplier of the contrast term (0 during warm-up), set on every
        # rank by ContrastWarmupHook. A plain attribute, not a buffer: it is
        # recomputed from the iteration, so it needs no checkpointing and is
        # never part of the plain head's state_dict.
        self.contrast_weight_scale = 1.0
        self._pending_keys: Optional[Tuple[Tensor, Tensor]] = None
        self._warned_unconsumed = False
        #: what enqueues the stashed keys (set by PixelMemoryBankHook); a
        #: training step with a bank and no consumer is an error
        self.memory_bank_consumer: Optional[str] = None

    # ------------------------------------------------------------------ #
    @property
    def contrast_weight(self) -> float:
        """The active weight of the contrast term (scale x loss_weight)."""
        return float(self.contrast_weight_scale) * float(
            getattr(self.contrast_loss, 'loss_weight', 1.0))

    @property
    def contrast_loss_name(self) -> str:
        return getattr(self.contrast_loss, 'loss_name', 'loss_contrast')

    def pop_pending_keys(self) -> Optional[Tuple[Tensor, Tensor]]:
        """Detached ``(keys (B, D, h, w), labels (B, h, w))`` of the last
        training step, or None; clears them (used by the enqueue hook)."""
        pending, self._pending_keys = self._pending_keys, None
        return pending

    def _connected_zero(self, embed: Optional[Tensor]) -> Tensor:
        if embed is not None:
            # one element, in fp32: an fp16 sum of the map could overflow
            # (inf * 0 = NaN)
            return embed.reshape(-1)[:1].float().sum() * 0.
        return sum(p.sum() for p in self.proj_head.parameters()) * 0.

    def aux_feature(self, feat: Tensor, head_input) -> Tensor:
        if self.proj_in == 'backbone':
            if head_input is None:
                raise RuntimeError(
                    f'{type(self).__name__}: proj_in=\'backbone\' but the '
                    f'head never called _transform_inputs() during loss()')
            return head_input
        return feat

    # ------------------------------------------------------------------ #
    def aux_losses(self, feat: Tensor, seg_logits: Tensor,
                   batch_data_samples) -> Dict[str, Tensor]:
        scale = float(self.contrast_weight_scale)
        active = scale != 0.
        need_embed = active or self.memory_bank is not None
        embed = self.proj_head(feat) if need_embed else None
        # proj_in='backbone' on a head that upsamples before its classifier
        # (DeepLabV3+: 1/8 stage, 1/4 logits): the prediction is taken at
        # the embedding's resolution below
        if embed is not None and self.proj_in != 'backbone' and \
                embed.shape[-2:] != seg_logits.shape[-2:]:
            raise RuntimeError(
                f'{type(self).__name__}: embedding {tuple(embed.shape[-2:])} '
                f'and logits {tuple(seg_logits.shape[-2:])} differ in size')
        seg_label = self.stack_gt(batch_data_samples)

        if self.memory_bank is not None:
            if self.memory_bank_consumer is None:
                raise missing_bank_consumer_error(type(self).__name__)
            with torch.no_grad():
                small = F.interpolate(
                    seg_label[:, None].float(), size=embed.shape[-2:],
                    mode='nearest').squeeze(1).long()
            if self._pending_keys is not None and not self._warned_unconsumed:
                warnings.warn(
                    f'{type(self).__name__}: the keys of the previous step '
                    f'were never enqueued; add '
                    f"custom_hooks=[dict(type='PixelMemoryBankHook')] to the "
                    f'config, otherwise the memory bank is never filled.')
                self._warned_unconsumed = True
            self._pending_keys = (embed.detach(), small)

        if not active:
            value = self._connected_zero(embed)
        else:
            seg_pred = seg_logits.detach().argmax(dim=1)
            if seg_pred.shape[-2:] != embed.shape[-2:]:
                seg_pred = F.interpolate(
                    seg_pred[:, None].float(), size=embed.shape[-2:],
                    mode='nearest').squeeze(1).long()
            if self.memory_bank is not None:
                value = self.contrast_loss(
                    embed, seg_label, seg_pred, memory_bank=self.memory_bank)
            else:
                value = self.contrast_loss(embed, seg_label, seg_pred)
            if scale != 1.:
                value = value * scale
        return {self.contrast_loss_name: value}


@MODELS.register_module()
class ContrastASPPHead(PixelContrastMixin, ASPPHead):
    """DeepLabV3 ``ASPPHead`` with the pixel-contrast training branch."""


@MODELS.register_module()
class ContrastDepthwiseSeparableASPPHead(PixelContrastMixin,
                                         DepthwiseSeparableASPPHead):
    """DeepLabV3+ head with the pixel-contrast training branch."""


@MODELS.register_module()
class ContrastFCNHead(PixelContrastMixin, FCNHead):
    """``FCNHead`` (HRNetV2 when used with ``resize_concat``) with the
    pixel-contrast training branch."""


@MODELS.register_module()
class ContrastOCRHead(PixelContrastMixin, OCRHead):
    """OCRNet's cascade stage (``OCRHead``) with the pixel-contrast training
    branch; ``forward(inputs, prev_output)`` still returns the logits, so the
    stage-0 re-run done by ``CascadeEncoderDecoder`` is unaffected."""
