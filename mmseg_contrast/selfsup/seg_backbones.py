"""mmseg backbones usable in mmpretrain self-supervised configs.

mmpretrain's self-supervised necks index the backbone output (``x[0]``), so
they need a tuple; mmseg's ``MobileNetV2`` returns a bare tensor when it has
a single ``out_index``. :class:`SegMobileNetV2` is mmseg's ``MobileNetV2``
(with its ``strides`` / ``dilations``, so pre-training can use the exact
geometry that fine-tuning will) registered into **mmpretrain's** ``MODELS``
and always returning a tuple. Its parameter names are mmseg's, so a
pre-trained checkpoint converts 1:1 into the fine-tuning backbone.
"""
from mmpretrain.registry import MODELS
from mmseg.models.backbones import MobileNetV2

__all__ = ['SegMobileNetV2']


@MODELS.register_module()
class SegMobileNetV2(MobileNetV2):
    """mmseg ``MobileNetV2`` whose ``forward`` always returns a tuple."""

    def forward(self, x):
        out = super().forward(x)
        return out if isinstance(out, tuple) else (out, )
