from .memory_bank import PixelMemoryBank, ddp_ignore_memory_banks  # noqa: F401
from .mixing import BatchMixer, mix_batch  # noqa: F401
