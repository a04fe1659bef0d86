"""Backbone variants that rebuild other code bases' layers exactly."""
from .aligned_hrnet import AlignedHRNet
from .resnet_ceil_pool import ResNetV1cCeilPool

__all__ = [
    'AlignedHRNet', 'ResNetV1cCeilPool'
]
