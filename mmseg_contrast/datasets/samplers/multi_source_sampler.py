"""Labelled + unlabelled data in one loader with a fixed ratio per batch."""
import itertools
from typing import Iterator, List, Optional, Union

import torch
from mmengine.dataset import ConcatDataset
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler


@DATA_SAMPLERS.register_module()
class MultiSourceSampler(Sampler):
    """Infinite sampler drawing every batch from several datasets of a
    ``ConcatDataset`` in a fixed ratio (mmdet 3.x ``MultiSourceSampler``).

    Each consecutive group of ``batch_size`` indices holds
    ``num_per_source[i]`` indices of source ``i``, where
    ``num_per_source[i] = int(batch_size * source_ratio[i] /
    sum(source_ratio))`` and source 0 takes the remainder.
    Use it with the dataloader's ``batch_size`` equal to ``batch_size`` (per
    GPU) and an iteration-based loop.

    Every source is an independent infinite stream of seeded random
    permutations (``shuffle=True``) or of ``0..n-1`` repeated; under DDP each
    rank takes every ``world_size``-th index of each stream, so ranks see
    disjoint samples and the same seed gives the same order.

    Args:
        dataset (ConcatDataset): e.g. ``[labelled, unlabelled]``.
        batch_size (int): samples per batch on one GPU.
        source_ratio (list[int | float]): relative share of each source, e.g.
            ``[1, 1]`` for ReCo's 10 + 10.
        shuffle (bool): shuffle each source. Defaults to True.
        seed (int, optional): random seed, synchronised across ranks.
    """

    def __init__(self,
                 dataset: ConcatDataset,
                 batch_size: int,
                 source_ratio: List[Union[int, float]],
                 shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not hasattr(dataset, 'cumulative_sizes'):
            raise TypeError(
                f'MultiSourceSampler needs a ConcatDataset, got '
                f'{type(dataset).__name__}')
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'batch_size must be a positive int, got '
                             f'{batch_size!r}')
        if len(source_ratio) != len(dataset.cumulative_sizes):
            raise ValueError(
                f'source_ratio has {len(source_ratio)} entries but the '
                f'ConcatDataset has {len(dataset.cumulative_sizes)} datasets')
        if any(r < 0 for r in source_ratio) or sum(source_ratio) <= 0:
            raise ValueError(f'source_ratio must be non-negative with a '
                             f'positive sum, got {source_ratio}')
        rank, world_size = get_dist_info()
        self.rank, self.world_size = rank, world_size
        self.dataset = dataset
        self.cumulative_sizes = [0] + list(dataset.cumulative_sizes)
        self.batch_size = batch_size
        self.source_ratio = source_ratio
        self.num_per_source = [
            int(batch_size * sr / sum(source_ratio)) for sr in source_ratio
        ]
        self.num_per_source[0] = batch_size - sum(self.num_per_source[1:])
        sizes = [
            self.cumulative_sizes[i + 1] - self.cumulative_sizes[i]
            for i in range(len(source_ratio))
        ]
        for i, (n, size) in enumerate(zip(self.num_per_source, sizes)):
            if n > 0 and size == 0:
                raise ValueError(f'source {i} of the ConcatDataset is empty '
                                 f'but should give {n} samples per batch')
        self.sizes = sizes
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed

    def _infinite_indices(self, source: int) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + source)
        n = self.sizes[source]
        while True:
            if self.shuffle:
                yield from torch.randperm(n, generator=g).tolist()
            else:
                yield from range(n)

    def _source_stream(self, source: int) -> Iterator[int]:
        return itertools.islice(
            self._infinite_indices(source), self.rank, None, self.world_size)

    def __iter__(self) -> Iterator[int]:
        streams = [self._source_stream(i) if n > 0 else None
                   for i, n in enumerate(self.num_per_source)]
        while True:
            for i, n in enumerate(self.num_per_source):
                if n == 0:
                    continue
                offset = self.cumulative_sizes[i]
                for _ in range(n):
                    yield offset + next(streams[i])

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Not used: the sampler is infinite and seeded once."""
