"""DeepLabV3 head of openseg.pytorch (ContrastiveSeg's released DeepLabV3).

openseg's ``DeepLabHead`` (``lib/models/modules/decoder_block.py``) is
mmseg's ``ASPPHead`` plus one layer: after the ASPP projection
(conv3x3 -> BN -> ReLU, mmseg's ``bottleneck``) it applies a *refine* conv3x3
-> BN **without activation** and then the 1x1 classifier (no dropout). The
ASPP itself matches mmseg's with ``dilations=(1, 12, 24, 36)``, ``channels=
512``; its image-pool branch is concatenated last in openseg and first in
mmseg, which only permutes the bottleneck's input channels (the converter
does that, see :mod:`mmseg_contrast.converters.openseg`). The auxiliary
``layer_dsn`` is a stock ``FCNHead`` (1024 -> 256, conv3x3 -> BN -> ReLU,
1x1 classifier) on layer3.
"""
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads import ASPPHead
from mmseg.registry import MODELS

from .pixel_contrast_head import PixelContrastMixin


@MODELS.register_module()
class OpenSegASPPHead(ASPPHead):
    """``ASPPHead`` + openseg's refine conv3x3 -> BN (no activation) before
    ``cls_seg``. Arguments are ``ASPPHead``'s (use ``dropout_ratio=0`` for
    openseg's classifier)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.refine = ConvModule(
            self.channels,
            self.channels,
            3,
            padding=1,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=None)

    def _forward_feature(self, inputs):
        return self.refine(super()._forward_feature(inputs))


@MODELS.register_module()
class ContrastOpenSegASPPHead(PixelContrastMixin, OpenSegASPPHead):
    """:class:`OpenSegASPPHead` with the pixel-contrast training branch
    (``proj_in='backbone'`` is ContrastiveSeg's ``DeepLabV3Contrast``)."""
