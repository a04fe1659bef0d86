from .pixel_contrast_hooks import ContrastWarmupHook, PixelMemoryBankHook  # noqa: F401,E501
from .iteration_seed_hook import IterationSeedHook  # noqa: F401
from .mean_teacher_hook import MeanTeacherHook  # noqa: F401
from .label_check_hook import LabelRangeCheckHook  # noqa: F401
