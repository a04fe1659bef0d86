"""Models registered into ``mmseg.registry.MODELS``."""
from . import decode_heads, losses, segmentors, utils  # noqa: F401
