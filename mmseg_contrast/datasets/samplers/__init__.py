from .multi_source_sampler import (
    MultiSourceSampler,
    check_loader_batch_size,
    split_batch,
)

__all__ = [
    'MultiSourceSampler', 'check_loader_batch_size', 'split_batch'
]
