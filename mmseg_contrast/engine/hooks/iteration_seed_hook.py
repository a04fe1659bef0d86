"""Bit-exact ``--resume``: the random state of every training iteration is a
function of ``(seed, iteration)`` only.

mmengine seeds torch / numpy / python once, at start-up, and does not
checkpoint the generators, so after ``--resume`` everything that draws from
the global generators (dropout, the pixel-contrast anchor sampling, ReCo's
query / key sampling, ClassMix / CutMix masks, in-process data augmentation)
continues from a different state than the uninterrupted run did.

:class:`IterationSeedHook` re-seeds the three global generators (torch CPU and
every CUDA device, numpy, python ``random``) of the main process right before
the batch of iteration ``t`` is fetched, with a seed mixed from
``(runner.seed, t)``. Nothing has to be saved: a resumed run re-seeds
iteration ``t`` exactly like the uninterrupted run did, whatever happened in
between (validation, a dataloader restart at the end of an epoch, a
different process). The rest of the training state is already exact:

* mmengine's ``IterBasedTrainLoop`` replays the first ``t`` batches on
  resume (it fetches and discards them), so the sampler position and the
  data workers' generators (seeded once per worker by mmengine, then used
  sequentially) are where the uninterrupted run had them;
* the memory bank draws its pixel choice from a generator seeded by
  ``(seed, number of updates, rank)`` (a checkpointed buffer);
* weights, EMA teacher, bank, optimizer, AMP loss scale, schedulers and the
  message hub (logged-loss history) are in the checkpoint.

Under DDP ``runner.seed`` already includes the rank when
``randomness=dict(diff_rank_seed=True)``; otherwise all ranks get the same
stream, as with mmengine's own seeding.

``tools/train.py`` adds this hook to every config that does not list it; with
mmseg's own ``tools/train.py`` add ``dict(type='IterationSeedHook')`` to
``custom_hooks``. For loops other than ``IterBasedTrainLoop`` the re-seed
happens in ``before_train_iter`` instead (after the batch is fetched).
"""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import HOOKS

from mmseg_contrast.options import check_int, check_optional

_MASK64 = (1 << 64) - 1


def iteration_seed(seed: int, iteration: int) -> int:
    """64-bit seed of iteration ``iteration``: SplitMix64 of the pair, so
    neighbouring iterations (and seeds) get unrelated streams."""
    z = ((int(seed) & _MASK64) * 0x9E3779B97F4A7C15 + int(iteration) +
         0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def seed_everything(seed64: int) -> None:
    """Seed torch (CPU and all CUDA devices), numpy and python ``random``
    from one 64-bit value."""
    torch.manual_seed(seed64)  # also seeds every CUDA device
    np.random.seed([seed64 & 0xFFFFFFFF, seed64 >> 32])
    random.seed(seed64)


class _SeedingIterator:
    """Wraps the loop's dataloader iterator: re-seeds before each fetch.

    Counts fetches from 0, so the ``t`` batches mmengine skips on resume are
    fetched under the same seeds as in the uninterrupted run and the batch of
    iteration ``t`` is fetched (and trained) under seed ``t``.
    """

    def __init__(self, iterator, seed: int):
        self._inner = iterator
        self._seed = int(seed)
        self.fetched = 0

    def __iter__(self):
        return self

    def __next__(self):
        seed_everything(iteration_seed(self._seed, self.fetched))
        self.fetched += 1
        return next(self._inner)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """Re-seed the global generators at every training iteration from
    ``(runner.seed, iteration)`` so that ``--resume`` continues bit-exactly.

    Args:
        seed (int, optional): base seed, any int (checked when built);
            defaults to ``runner.seed`` (the config's ``randomness.seed``,
            or the random seed mmengine drew and stored in the checkpoint's
            ``meta``).
    """

    priority = 'HIGHEST'

    def __init__(self, seed: Optional[int] = None):
        check_optional(check_int, type(self).__name__, 'seed', seed)
        self.seed = seed
        self._wrapped = False

    def _base_seed(self, runner) -> int:
        if self.seed is not None:
            return self.seed
        seed = getattr(runner, 'seed', None)
        if seed is None:
            raise RuntimeError(
                'IterationSeedHook: the runner has no seed; set '
                'randomness=dict(seed=<int>) or IterationSeedHook(seed=...).')
        return int(seed)

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        self._wrapped = False
        if isinstance(loop, IterBasedTrainLoop) and hasattr(
                loop, 'dataloader_iterator'):
            if not isinstance(loop.dataloader_iterator, _SeedingIterator):
                loop.dataloader_iterator = _SeedingIterator(
                    loop.dataloader_iterator, self._base_seed(runner))
            self._wrapped = True

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not self._wrapped:
            seed_everything(iteration_seed(self._base_seed(runner),
                                           runner.iter))
