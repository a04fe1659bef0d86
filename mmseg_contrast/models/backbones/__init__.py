"""Backbone variants that rebuild other code bases' layers exactly."""
from .aligned_hrnet import AlignedHRNet  # noqa: F401
from .resnet_ceil_pool import ResNetV1cCeilPool  # noqa: F401
