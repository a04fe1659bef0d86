"""Models registered into ``mmseg.registry.MODELS``."""
from . import backbones, decode_heads, losses, segmentors, utils  # noqa: F401
from . import selfsup  # noqa: F401,E402  (mmpretrain-scope DenseCL)
