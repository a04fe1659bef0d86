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
from mmseg_contrast.models.selfsup import DenseCLConfigError


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
