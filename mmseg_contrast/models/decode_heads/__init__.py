from .aux_embedding_mixin import (
    AuxEmbeddingMixin,
    ProjectionHead,
)
from .openseg_aspp_head import (
    ContrastOpenSegASPPHead,
    OpenSegASPPHead,
)
from .pixel_contrast_head import (
    ContrastASPPHead,
    ContrastDepthwiseSeparableASPPHead,
    ContrastFCNHead,
    ContrastOCRHead,
    PixelContrastMixin,
)
from .reco_head import (
    ReCoASPPHead,
    ReCoDepthwiseSeparableASPPHead,
    ReCoFCNHead,
    ReCoMixin,
    ReCoPSPHead,
    ReCoSegformerHead,
    ReCoUPerHead,
)

__all__ = [
    'AuxEmbeddingMixin', 'ContrastASPPHead',
    'ContrastDepthwiseSeparableASPPHead', 'ContrastFCNHead',
    'ContrastOCRHead', 'ContrastOpenSegASPPHead', 'OpenSegASPPHead',
    'PixelContrastMixin', 'ProjectionHead', 'ReCoASPPHead',
    'ReCoDepthwiseSeparableASPPHead', 'ReCoFCNHead', 'ReCoMixin',
    'ReCoPSPHead', 'ReCoSegformerHead', 'ReCoUPerHead'
]
