"""HRNet whose fuse layers upsample with ``align_corners=True``.

mmseg's ``HRModule`` fuses a lower-resolution branch ``j`` into branch ``i``
with ``conv1x1 -> BN -> Upsample(scale_factor=2**(j-i),
align_corners=False)`` followed by a resize to branch ``i``'s size (again
``align_corners=False``). The HRNet of openseg.pytorch, which ContrastiveSeg's
released checkpoints were trained with (``lib/models/backbones/hrnet/
hrnet_backbone.py``, ``HighResolutionModule.forward``), interpolates the
``conv1x1 -> BN`` output directly to branch ``i``'s size with
``align_corners=True``. With identical weights the two change the backbone's
features by several percent, so checkpoints trained one way are evaluated
wrongly the other way.

``AlignedHRNet(fuse_align_corners=True)`` keeps mmseg's modules, parameters
and key names and only changes that interpolation: before each ``HRModule``
runs, a forward pre-hook points every fuse-path ``Upsample`` at its target
branch's size (so the first resize already lands on it and mmseg's second
resize is the identity) with the requested ``align_corners``. Everything else
(stem, transitions, blocks, fuse order ``y = 0 + x_0' + x_1' + ...``) is the
same layer for layer in both code bases.
"""
from mmseg.models.backbones import HRNet
from mmseg.models.backbones.hrnet import HRModule
from mmseg.models.utils import Upsample
from mmseg.registry import MODELS


def _fuse_paths(module: HRModule):
    """(i, Upsample) for every upsampling fuse path of an HRModule."""
    if module.fuse_layers is None:
        return
    for i, layer in enumerate(module.fuse_layers):
        for j in range(i + 1, len(layer)):
            up = layer[j][-1]
            if not isinstance(up, Upsample):  # pragma: no cover - mmseg API
                raise TypeError(f'unexpected HRNet fuse path {type(up)}')
            yield i, up


def _resize_to_target(module: HRModule, args):
    # branches keep their spatial size, so the inputs' sizes are the
    # fuse targets
    x = args[0]
    for i, up in _fuse_paths(module):
        up.size = tuple(x[i].shape[2:])


@MODELS.register_module()
class AlignedHRNet(HRNet):
    """mmseg ``HRNet`` with the fuse-layer interpolation as an option.

    Args:
        fuse_align_corners (bool): ``align_corners`` of the upsampling fuse
            paths, which interpolate straight to the target branch's size.
            ``True`` reproduces openseg.pytorch / ContrastiveSeg. Default
            ``True`` (use the stock ``HRNet`` for mmseg's behaviour).
        **kwargs: ``HRNet`` arguments.
    """

    def __init__(self, fuse_align_corners: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.fuse_align_corners = bool(fuse_align_corners)
        for m in self.modules():
            if isinstance(m, HRModule) and m.fuse_layers is not None:
                for _, up in _fuse_paths(m):
                    up.align_corners = self.fuse_align_corners
                m.register_forward_pre_hook(_resize_to_target)
