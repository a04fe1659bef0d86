from .pixel_contrast_loss import PixelContrastLoss
from .reco_loss import ReCoLoss

__all__ = [
    'PixelContrastLoss', 'ReCoLoss'
]
