"""Models registered into ``mmseg.registry.MODELS``."""
from . import backbones, decode_heads, losses, segmentors, utils  # noqa: F401
