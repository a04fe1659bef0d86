from .aux_embedding_mixin import AuxEmbeddingMixin, ProjectionHead  # noqa: F401
from .pixel_contrast_head import (  # noqa: F401
    ContrastASPPHead, ContrastDepthwiseSeparableASPPHead, ContrastFCNHead,
    ContrastOCRHead, PixelContrastMixin)
from .reco_head import (ReCoASPPHead, ReCoDepthwiseSeparableASPPHead, ReCoFCNHead, ReCoMixin, ReCoPSPHead, ReCoSegformerHead, ReCoUPerHead)  # noqa: F401,E501
from .openseg_aspp_head import ContrastOpenSegASPPHead, OpenSegASPPHead  # noqa: F401,E501
