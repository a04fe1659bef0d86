"""Datasets, transforms and samplers registered into mmseg's registries."""
from . import samplers, transforms  # noqa: F401
from .aal_slices import AALSliceDataset  # noqa: F401,E402
from .fashion_canvas import FashionCanvasDataset  # noqa: F401,E402
from .unlabeled import UnlabeledImageDataset  # noqa: F401
from .few_label import partial_label_map, select_labeled_subset  # noqa: F401
