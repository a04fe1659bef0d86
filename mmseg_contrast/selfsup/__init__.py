"""Everything registered into **mmpretrain's** scope (DenseCL pre-training
configs run with ``default_scope='mmpretrain'``): the checked DenseCL model,
the mmseg-layout backbones, the dataset that feeds an mmseg dataset's images
to mmpretrain, and the pre-training check hook."""
from .densecl import (
    CheckedDenseCL,
    DenseCLConfigError,
    check_densecl_backbone_output,
    check_densecl_queue,
    check_densecl_static,
)
from .densecl_check_hook import DenseCLCheckHook
from .seg_backbones import SegMobileNetV2
from .seg_images_dataset import SegImagesDataset

__all__ = [
    'CheckedDenseCL', 'DenseCLConfigError', 'DenseCLCheckHook',
    'SegImagesDataset', 'SegMobileNetV2', 'check_densecl_backbone_output',
    'check_densecl_queue', 'check_densecl_static'
]
