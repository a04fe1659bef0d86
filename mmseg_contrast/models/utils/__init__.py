from .memory_bank import PixelMemoryBank, ddp_ignore_memory_banks
from .mixing import BatchMixer, mix_batch

__all__ = [
    'BatchMixer', 'PixelMemoryBank', 'ddp_ignore_memory_banks', 'mix_batch'
]
