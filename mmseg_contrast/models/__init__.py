"""Models registered into ``mmseg.registry.MODELS``."""
from . import backbones, decode_heads, losses, segmentors, utils

__all__ = [
    'backbones', 'decode_heads', 'losses', 'segmentors', 'utils'
]
