"""ResNetV1c with a ``ceil_mode`` stem max-pool.

openseg.pytorch's ``deepbase_resnet*`` (the DeepLabV3 backbone of the
ContrastiveSeg release, ``lib/models/backbones/resnet/resnet_models.py``) is a
V1c ResNet: a deep stem ``conv3x3(3->64, s2) -> conv3x3(64->64) ->
conv3x3(64->128)`` (each with BN + ReLU; mmseg's ``stem_channels=128``),
``pytorch``-style bottlenecks, and in the dilated variant layer3/4 with
stride 1 and dilation 2/4 where the first block of a stage uses half the
dilation (mmseg's ``contract_dilation=True``). The one layer mmseg cannot
express is the stem pooling: ``MaxPool2d(3, stride=2, padding=1,
ceil_mode=True)`` instead of mmseg's ``ceil_mode=False``. On an even-sized
stem output (e.g. 256x512 for a 512x1024 crop) ceil mode gives one more row
and column (129x257), which shifts every later feature map.
"""
import torch.nn as nn
from mmseg.models.backbones import ResNetV1c
from mmseg.registry import MODELS


@MODELS.register_module()
class ResNetV1cCeilPool(ResNetV1c):
    """mmseg ``ResNetV1c`` whose stem max-pool uses ``ceil_mode``.

    Args:
        pool_ceil_mode (bool): ``ceil_mode`` of the 3x3/2 stem max-pool.
            Default ``True`` (openseg.pytorch); ``False`` is ``ResNetV1c``.
        **kwargs: ``ResNetV1c`` arguments (use ``stem_channels=128`` for the
            openseg deep stem).
    """

    def __init__(self, pool_ceil_mode: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.maxpool = nn.MaxPool2d(
            kernel_size=3, stride=2, padding=1, ceil_mode=bool(pool_ceil_mode))
