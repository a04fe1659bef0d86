from .semi_data_preprocessor import SemiDataPreProcessor
from .semi_segmentor import SemiSegmentor

__all__ = [
    'SemiDataPreProcessor', 'SemiSegmentor'
]
