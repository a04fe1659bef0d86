"""Labelled + unlabelled data in one loader with a fixed ratio per batch."""
import itertools
from typing import Iterator, List, Optional, Union

import torch
from mmengine.dataset import ConcatDataset
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ...options import (
    check_bool,
    check_finite_nonneg,
    check_int,
    check_optional,
    check_positive_int,
)


def split_batch(batch_size: int, source_ratio) -> List[int]:
    """Samples per batch of each source: ``int(batch_size * r_i /
    sum(r))``, source 0 takes the remainder."""
    total = sum(source_ratio)
    counts = [int(batch_size * r / total) for r in source_ratio]
    counts[0] = batch_size - sum(counts[1:])
    return counts


def _fits(counts, source_ratio) -> bool:
    return all((n > 0) == (r > 0) for n, r in zip(counts, source_ratio))


def _check_split(owner: str, batch_size: int, source_ratio,
                 counts: List[int]) -> None:
    """Every source with a positive ratio gets >= 1 sample per batch and
    every source with ratio 0 gets none; otherwise a ``ValueError`` with
    the smallest larger batch size that works."""
    if _fits(counts, source_ratio):
        return
    fix = next((b for b in range(batch_size + 1, batch_size + 10_001)
                if _fits(split_batch(b, source_ratio), source_ratio)), None)
    fix = ('' if fix is None else f'batch_size={fix} (it gives '
           f'{split_batch(fix, source_ratio)}, also for the dataloader), or ')
    starved = [i for i, (n, r) in enumerate(zip(counts, source_ratio))
               if r > 0 and n == 0]
    what = (f'source(s) {starved} would never get a sample (e.g. no '
            f'unlabelled image in any batch)' if starved else
            'source 0 has ratio 0 but would take the remainder')
    raise ValueError(
        f'{owner}: source_ratio={list(source_ratio)} with '
        f'batch_size={batch_size} gives {counts} samples per batch: {what}. '
        f'Fix: use {fix}a source_ratio whose shares of {batch_size} are '
        f'whole numbers, >= 1 for every source with a positive ratio.')


@DATA_SAMPLERS.register_module()
class MultiSourceSampler(Sampler):
    """Infinite sampler drawing every batch from several datasets of a
    ``ConcatDataset`` in a fixed ratio (mmdet 3.x ``MultiSourceSampler``).

    Each consecutive group of ``batch_size`` indices holds
    ``num_per_source[i]`` indices of source ``i``, where
    ``num_per_source[i] = int(batch_size * source_ratio[i] /
    sum(source_ratio))`` and source 0 takes the remainder; every source
    with a positive ratio must get at least one sample and a source with
    ratio 0 none (checked when built). Use it with the dataloader's
    ``batch_size`` equal to ``batch_size`` (per GPU; checked before the
    first batch by :func:`check_loader_batch_size`, which
    ``LabelRangeCheckHook`` and ``MeanTeacherHook`` call) and an
    iteration-based loop.

    Every source is an independent infinite stream of seeded random
    permutations (``shuffle=True``) or of ``0..n-1`` repeated; under DDP each
    rank takes every ``world_size``-th index of each stream, so ranks see
    disjoint samples and the same seed gives the same order.

    Args:
        dataset (ConcatDataset): e.g. ``[labelled, unlabelled]``.
        batch_size (int): samples per batch on one GPU, >= 1.
        source_ratio (list[int | float]): relative share of each source,
            finite, >= 0, with a positive sum, e.g. ``[1, 1]`` for ReCo's
            10 + 10.
        shuffle (bool): shuffle each source. Defaults to True.
        seed (int, optional): random seed (an int), synchronised across
            ranks.
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
        owner = type(self).__name__
        check_positive_int(owner, 'batch_size', batch_size)
        if len(source_ratio) != len(dataset.cumulative_sizes):
            raise ValueError(
                f'source_ratio has {len(source_ratio)} entries but the '
                f'ConcatDataset has {len(dataset.cumulative_sizes)} datasets')
        for i, r in enumerate(source_ratio):
            check_finite_nonneg(owner, f'source_ratio[{i}]', r)
        if sum(source_ratio) <= 0:
            raise ValueError(f'{owner}: source_ratio={list(source_ratio)} is '
                             'invalid; it must have a positive sum')
        check_bool(owner, 'shuffle', shuffle)
        check_optional(check_int, owner, 'seed', seed)
        rank, world_size = get_dist_info()
        self.rank, self.world_size = rank, world_size
        self.dataset = dataset
        self.cumulative_sizes = [0] + list(dataset.cumulative_sizes)
        self.batch_size = batch_size
        self.source_ratio = source_ratio
        self.num_per_source = split_batch(batch_size, source_ratio)
        _check_split(owner, batch_size, source_ratio, self.num_per_source)
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


def check_loader_batch_size(dataloader) -> None:
    """Raise ``ValueError`` if ``dataloader`` draws from a
    :class:`MultiSourceSampler` with a batch size other than the sampler's.

    The sampler cannot see the loader: with ``train_dataloader.batch_size=4``
    and a sampler ``batch_size=20`` split ``[10, 10]`` every batch holds 4
    consecutive indices of a 20-sample group, so the batches alternate
    all-labelled / all-unlabelled (what ``--cfg-options
    train_dataloader.batch_size=4`` does to a mean-teacher config). Any
    other loader (or ``None``) passes.
    """
    sampler = getattr(dataloader, 'sampler', None)
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    if not isinstance(sampler, MultiSourceSampler):
        sampler = getattr(batch_sampler, 'sampler', None)
    if not isinstance(sampler, MultiSourceSampler):
        return
    size = getattr(dataloader, 'batch_size', None)
    if size is None:
        size = getattr(batch_sampler, 'batch_size', None)
    if size is None or size == sampler.batch_size:
        return
    raise ValueError(
        f'{type(sampler).__name__}: train_dataloader.batch_size={size} '
        f'differs from train_dataloader.sampler.batch_size='
        f'{sampler.batch_size} (the sampler splits each group of '
        f'{sampler.batch_size} indices {sampler.num_per_source} over the '
        f'sources, source_ratio={list(sampler.source_ratio)}): every batch '
        f'would take {size} consecutive indices of these groups, so the '
        f'batches would alternate between the sources (e.g. all-labelled / '
        f'all-unlabelled) instead of mixing them. Fix: set both to the same '
        f'value, e.g. --cfg-options train_dataloader.batch_size={size} '
        f'train_dataloader.sampler.batch_size={size}.')
