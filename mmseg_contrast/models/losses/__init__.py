from .reco_loss import ReCoLoss  # noqa: F401
from .pixel_contrast_loss import PixelContrastLoss  # noqa: F401
