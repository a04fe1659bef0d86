"""IterationSeedHook: the random state of iteration t is a function of
(seed, t) only (the Runner-level resume test is in
test_pixel_contrast_hooks.py, the CLI one in test_tools/test_exact_resume.py).
"""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.runner import IterBasedTrainLoop

from mmseg_contrast.engine.hooks import IterationSeedHook
from mmseg_contrast.engine.hooks.iteration_seed_hook import (
    _SeedingIterator,
    iteration_seed,
    seed_everything,
)


def _draw():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(),
            [random.random() for _ in range(3)])


def test_iteration_seed_is_a_mixed_64_bit_function():
    seeds = {iteration_seed(s, t) for s in range(4) for t in range(256)}
    assert len(seeds) == 4 * 256
    assert all(0 <= v < 2**64 for v in seeds)
    assert iteration_seed(0, 5) == iteration_seed(0, 5)
    # neighbours are unrelated (not seed + 1)
    assert abs(iteration_seed(0, 1) - iteration_seed(0, 0)) > 2**32


def test_seed_everything_seeds_torch_numpy_python():
    seed_everything(iteration_seed(3, 7))
    a = _draw()
    _draw()
    seed_everything(iteration_seed(3, 7))
    assert _draw() == a
    seed_everything(iteration_seed(3, 8))
    assert _draw() != a


def test_seeding_iterator_reseeds_before_every_fetch():
    def loader():
        while True:  # an in-process loader drawing random numbers
            yield torch.rand(2)

    it = _SeedingIterator(loader(), seed=5)
    got = [next(it) for _ in range(4)]
    assert it.fetched == 4
    for t, value in enumerate(got):
        seed_everything(iteration_seed(5, t))
        assert torch.equal(torch.rand(2), value)
    # a second iterator skipping 2 fetches continues identically
    it2 = _SeedingIterator(loader(), seed=5)
    next(it2), next(it2)
    assert torch.equal(next(it2), got[2])


def test_hook_wraps_the_iter_loop_and_reseeds_other_loops_per_iter():
    loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    loop.dataloader_iterator = iter([1, 2, 3])
    runner = SimpleNamespace(train_loop=loop, seed=11, iter=0)
    hook = IterationSeedHook()
    hook.before_train(runner)
    assert isinstance(loop.dataloader_iterator, _SeedingIterator)
    hook.before_train(runner)  # not wrapped twice
    assert not isinstance(loop.dataloader_iterator._inner, _SeedingIterator)
    assert next(loop.dataloader_iterator) == 1
    # the re-seed happened at the fetch, not in before_train_iter
    state = torch.get_rng_state()
    hook.before_train_iter(runner, 0)
    assert torch.equal(torch.get_rng_state(), state)

    other = SimpleNamespace(train_loop=object(), seed=11, iter=6)
    hook.before_train(other)
    hook.before_train_iter(other, 6)
    a = _draw()
    seed_everything(iteration_seed(11, 6))
    assert _draw() == a
    # an explicit seed wins over the runner's
    hook = IterationSeedHook(seed=2)
    hook.before_train(other)
    hook.before_train_iter(other, 6)
    a = _draw()
    seed_everything(iteration_seed(2, 6))
    assert _draw() == a
    with pytest.raises(TypeError, match='seed'):
        IterationSeedHook(seed='0')
