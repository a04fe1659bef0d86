"""Datasets, transforms and samplers registered into mmseg's registries."""
from . import samplers, transforms
from .aal_slices import AALSliceDataset
from .fashion_canvas import FashionCanvasDataset
from .few_label import partial_label_map, select_labeled_subset
from .unlabeled import UnlabeledImageDataset

__all__ = [
    'AALSliceDataset', 'FashionCanvasDataset', 'UnlabeledImageDataset',
    'partial_label_map', 'samplers', 'select_labeled_subset', 'transforms'
]
