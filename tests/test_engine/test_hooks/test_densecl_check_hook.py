"""DenseCLCheckHook: queue/batch, partial-batch and dense-grid errors raised
in before_train, i.e. before the first iteration."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.registry import DefaultScope
from torch.utils.data import DataLoader, Dataset

import mmseg_contrast  # noqa: F401
from mmseg_contrast.selfsup import DenseCLConfigError


class _Views(Dataset):

    def __init__(self, n, size):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return dict(inputs=[torch.zeros(3, self.size, self.size,
                                        dtype=torch.uint8)] * 2)


def _model(queue_len=8, num_grid=None):
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(
            dict(type='DenseCL', queue_len=queue_len, feat_dim=4,
                 backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
                 neck=dict(type='DenseCLNeck', in_channels=512,
                           hid_channels=8, out_channels=4, num_grid=num_grid),
                 head=dict(type='ContrastiveHead',
                           loss=dict(type='CrossEntropyLoss'),
                           temperature=0.2)))


def _runner(model, n=10, batch_size=4, size=64, drop_last=True,
            infinite=False):
    ds = _Views(n, size)
    sampler = (InfiniteSampler if infinite else DefaultSampler)(
        ds, shuffle=False)
    loader = DataLoader(ds, batch_size=batch_size, sampler=sampler,
                        drop_last=drop_last)
    logger = logging.getLogger('densecl_check_hook_test')
    return SimpleNamespace(model=model, train_dataloader=loader,
                           logger=logger)


def _hook(**kw):
    from mmpretrain.registry import HOOKS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return HOOKS.build(dict(type='DenseCLCheckHook', **kw))


def test_ok_plain_mmpretrain_densecl(caplog):
    model = _model()
    model.train()
    with caplog.at_level(logging.INFO, logger='densecl_check_hook_test'):
        _hook().before_train(_runner(model))
    assert 'input 64x64 -> dense grid 2x2: OK' in caplog.text
    assert model.backbone.training  # mode restored after the probe


def test_queue_not_multiple_of_batch():
    with pytest.raises(DenseCLConfigError, match='queue_len=8 must be a '
                       'multiple of the global batch size 3'):
        _hook().before_train(_runner(_model(), batch_size=3))


def test_partial_last_batch():
    # 10 images, batch 4, drop_last=False -> last batch of 2 breaks the queue
    with pytest.raises(DenseCLConfigError, match='last batch of 2 images'):
        _hook().before_train(_runner(_model(), drop_last=False))
    # an infinite sampler always yields full batches
    _hook(probe_input=False).before_train(
        _runner(_model(), drop_last=False, infinite=True))


def test_too_few_images():
    with pytest.raises(DenseCLConfigError, match='no iteration'):
        _hook().before_train(_runner(_model(), n=3))


def test_dense_grid_mismatch_before_training():
    with pytest.raises(DenseCLConfigError, match=r'num_grid=7 .* 2x2 = 4'):
        _hook().before_train(_runner(_model(num_grid=7)))
    # the same input size with a matching grid passes
    _hook().before_train(_runner(_model(num_grid=2)))


def _simulated_own_key_rate(n, queue_len, batch, steps=1500, seed=0):
    """Stream concatenated permutations (InfiniteSampler), queue = the
    queue_len samples before each batch; the rate of queries whose image
    is in the queue."""
    g = torch.Generator().manual_seed(seed)
    stream = torch.cat([torch.randperm(n, generator=g)
                        for _ in range(steps * batch // n + 2)])
    hits = total = 0
    for step in range(queue_len // batch, steps):
        s = step * batch
        queue = stream[s - queue_len:s]
        hits += int(torch.isin(stream[s:s + batch], queue).sum())
        total += batch
    return hits / total


def test_own_image_in_queue_probability():
    from mmseg_contrast.selfsup.densecl import (
        own_image_in_queue_prob,
        suggest_queue_len,
    )
    # the numbers quoted in the docs
    assert own_image_in_queue_prob(82, 64, 16) == pytest.approx(0.381,
                                                               abs=1e-3)
    assert own_image_in_queue_prob(82, 16, 16) == pytest.approx(0.038,
                                                               abs=1e-3)
    assert own_image_in_queue_prob(1281167, 65536, 256) == pytest.approx(
        0.0013, abs=1e-4)
    for n, q, b in ((82, 64, 16), (82, 16, 16), (50, 12, 4)):
        assert own_image_in_queue_prob(n, q, b) == pytest.approx(
            _simulated_own_key_rate(n, q, b), abs=0.01)
    assert own_image_in_queue_prob(10, 8, 4) == 1.0  # queue ~ dataset
    assert suggest_queue_len(82, 16, 0.05) == 16
    assert suggest_queue_len(82, 16, 0.01) is None
    assert suggest_queue_len(82, 8, 0.01) == 8
    with pytest.raises(DenseCLConfigError, match='positive'):
        own_image_in_queue_prob(0, 8, 4)


def test_queue_too_long_for_the_dataset(caplog):
    # 82 images, batch 16, queue 64 (the old AAL demo): 38 % false negatives
    runner = _runner(_model(queue_len=64), n=82, batch_size=16)
    with caplog.at_level(logging.WARNING, logger='densecl_check_hook_test'):
        _hook(probe_input=False).before_train(runner)
    assert 'queue_len=64 with 82 training images' in caplog.text
    assert '38.1%' in caplog.text and 'use queue_len=16 (P = 3.8%)' \
        in caplog.text
    with pytest.raises(DenseCLConfigError, match='smaller batch'):
        _hook(probe_input=False, strict_queue=True,
              max_own_key_prob=0.01).before_train(runner)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='densecl_check_hook_test'):
        _hook(probe_input=False).before_train(
            _runner(_model(queue_len=16), n=82, batch_size=16))
    assert 'false negative' not in caplog.text
