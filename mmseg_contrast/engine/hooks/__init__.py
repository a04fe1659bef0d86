from .iteration_seed_hook import IterationSeedHook
from .label_check_hook import LabelRangeCheckHook
from .mean_teacher_hook import MeanTeacherHook
from .pixel_contrast_hooks import (
    ContrastWarmupHook,
    PixelMemoryBankHook,
)
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = [
    'ContrastWarmupHook', 'IterationSeedHook', 'LabelRangeCheckHook',
    'MeanTeacherHook', 'PixelMemoryBankHook', 'SafeCheckpointHook'
]
