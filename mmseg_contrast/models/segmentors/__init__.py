from .semi_data_preprocessor import SemiDataPreProcessor  # noqa: F401
from .semi_segmentor import SemiSegmentor  # noqa: F401
