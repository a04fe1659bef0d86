"""Every numeric option of the plugin's classes is checked when the config
is built (one ``ValueError`` / ``TypeError`` naming the class, the option,
the value and the valid range); the multi-source sampler gives every source
a sample per batch and must match its dataloader's batch size; the memory
bank drops keys that cannot be normalised."""
import copy
import math
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmseg.registry import DATA_SAMPLERS, HOOKS, MODELS
from torch.utils.data import ConcatDataset, DataLoader

from mmseg_contrast.datasets.samplers import check_loader_batch_size
from mmseg_contrast.engine.hooks import LabelRangeCheckHook, MeanTeacherHook
from mmseg_contrast.models.utils.memory_bank import PixelMemoryBank
from mmseg_contrast.models.utils.unsup_augment import UnsupBatchAugment
from mmseg_contrast.options import (
    OptionTypeError,
    check_int,
    check_probability,
    check_range,
)

from helpers.reliab_helpers import TINY_CFG
from helpers.semi_helpers import semi_cfg, tiny_segmentor_cfg
from helpers.tool_loading import load_tool

NAN, INF = float('nan'), float('inf')
BN = dict(type='BN', requires_grad=True)
POS, NONNEG, PROB, INT = '(0, inf)', '[0, inf)', '(0, 1]', '(-inf, inf)'
COUNT = '[1, inf)'


def _concat(*sizes):
    return ConcatDataset([list(range(n)) for n in sizes or (6, 6)])


def _head(kind, **kw):
    cfg = dict(in_channels=8, channels=8, num_convs=1, concat_input=False,
               num_classes=3, norm_cfg=BN)
    if kind == 'ContrastFCNHead':
        cfg.update(proj_channels=8, contrast_loss=dict(
            type='PixelContrastLoss', max_views=2))
    return MODELS.build(dict(cfg, type=kind, **kw))


def _densecl(**kw):
    from mmpretrain.registry import MODELS as PRETRAIN
    head = dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                temperature=kw.pop('temperature', 0.2))
    cfg = dict(type='CheckedDenseCL', queue_len=8, feat_dim=4,
               momentum=0.001, head=head,
               backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
               neck=dict(type='DenseCLNeck', in_channels=512,
                         hid_channels=8, out_channels=4, num_grid=None))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return PRETRAIN.build(dict(cfg, **kw))


BUILD = {
    'PixelContrastLoss': lambda **kw: MODELS.build(
        dict(type='PixelContrastLoss', **kw)),
    'ReCoLoss': lambda **kw: MODELS.build(dict(type='ReCoLoss', **kw)),
    'PixelMemoryBank': lambda **kw: MODELS.build(dict(
        dict(type='PixelMemoryBank', num_classes=3, feat_dim=8,
             memory_size=16, pixel_per_image=4), **kw)),
    'ContrastFCNHead': lambda **kw: _head('ContrastFCNHead', **kw),
    'ReCoFCNHead': lambda **kw: _head('ReCoFCNHead', **kw),
    'SemiSegmentor': lambda **kw: MODELS.build(dict(
        type='SemiSegmentor', segmentor=tiny_segmentor_cfg(False),
        semi_train_cfg=kw)),
    'UnsupBatchAugment': lambda **kw: UnsupBatchAugment(**kw),
    'MultiSourceSampler': lambda **kw: DATA_SAMPLERS.build(dict(
        dict(type='MultiSourceSampler', dataset=_concat(), batch_size=4,
             source_ratio=[1, 1], seed=0), **kw)),
    'CheckedDenseCL': _densecl,
    **{name: (lambda name=name, **kw: HOOKS.build(dict(type=name, **kw)))
       for name in ('MeanTeacherHook', 'ContrastWarmupHook',
                    'IterationSeedHook', 'PixelMemoryBankHook')},
}

# (class, option as named in the message, bad values, valid range,
#  extra build arguments); the option's last name is the build argument
TABLE = [
    ('PixelContrastLoss', 'temperature', [0, -1., NAN, INF, '0.1'], POS),
    ('PixelContrastLoss', 'base_temperature', [0, NAN, INF], POS),
    ('PixelContrastLoss', 'max_samples', [0, 2.5], COUNT),
    ('PixelContrastLoss', 'max_views', [0, -3], COUNT),
    ('PixelContrastLoss', 'loss_weight', [-1., NAN, INF], NONNEG),
    ('PixelContrastLoss', 'num_keys', [0, 1.5], COUNT),
    ('PixelContrastLoss', 'num_pos_keys', [0], COUNT),
    ('PixelContrastLoss', 'semi_hard_ratio', [0, 1.5, NAN], PROB),
    ('PixelContrastLoss', 'num_classes', [0, 2.5], COUNT),
    ('PixelContrastLoss', 'ignore_index', [2.5, NAN], INT),
    ('ReCoLoss', 'temperature', [0, -1., NAN, INF], POS),
    ('ReCoLoss', 'num_queries', [0, 1.5], COUNT),
    ('ReCoLoss', 'num_negatives', [0, -2], COUNT),
    ('ReCoLoss', 'strong_threshold', [0, -1, NAN, 1.5, 97], PROB),
    ('ReCoLoss', 'loss_weight', [-1., NAN, INF], NONNEG),
    ('ReCoLoss', 'eps', [0, NAN, INF], POS),
    ('ReCoLoss', 'max_chunk_elements', [0, 2.5], COUNT),
    ('ReCoLoss', 'ignore_index', [2.5], INT),
    ('PixelMemoryBank', 'num_classes', [0, 2.5], COUNT),
    ('PixelMemoryBank', 'feat_dim', [0], COUNT),
    ('PixelMemoryBank', 'memory_size', [0, 16.0], COUNT),
    ('PixelMemoryBank', 'memory_size', [4, 10], '> pixel_per_image=10',
     dict(pixel_per_image=10)),
    ('PixelMemoryBank', 'pixel_per_image', [0, -1], COUNT),
    ('PixelMemoryBank', 'ignore_index', [2.5], INT),
    ('PixelMemoryBank', 'seed', [0.5], INT),
    ('PixelMemoryBank', 'gather', ['no'], 'True or False'),
    ('ContrastFCNHead', 'proj_channels', [0, 2.5], COUNT),
    ('ReCoFCNHead', 'proj_channels', [0, 2.5], COUNT),
    ('SemiSegmentor', 'semi_train_cfg.sup_weight', [-1., NAN, INF, '1'],
     NONNEG),
    ('SemiSegmentor', 'semi_train_cfg.unsup_weight', [-1., NAN], NONNEG),
    ('SemiSegmentor', 'semi_train_cfg.weak_threshold', [0, -1, 1.5, NAN],
     PROB),
    ('SemiSegmentor', 'semi_train_cfg.strong_threshold', [0, 97, NAN],
     PROB),
    ('SemiSegmentor', 'semi_train_cfg.class_portion', [0, 1.5, NAN], PROB),
    ('SemiSegmentor', 'semi_train_cfg.reco', ['yes'], 'True or False'),
    ('UnsupBatchAugment', 'unsup_aug.blur_prob', [-0.1, 1.5, NAN],
     '[0, 1]'),
    ('UnsupBatchAugment', 'unsup_aug.flip_prob', [2], '[0, 1]'),
    ('MeanTeacherHook', 'max_decay', [-0.1, 1.5, NAN], '[0, 1]'),
    ('MeanTeacherHook', 'max_decay', [1.0], '[0, 1)',
     dict(decay_schedule='constant')),
    ('MeanTeacherHook', 'max_decay', [1.0], '[0, 1)',
     dict(decay_schedule='cosine')),
    ('MeanTeacherHook', 'horizon', [0, 1.5, NAN], PROB,
     dict(decay_schedule='horizon')),
    ('MeanTeacherHook', 'max_iters', [0, 2.5], COUNT),
    ('MeanTeacherHook', 'interval', [0, 1.5], COUNT),
    ('MeanTeacherHook', 'skip_buffer', ['no'], 'True or False'),
    ('ContrastWarmupHook', 'warmup_iters', [-1, 2.5, True], NONNEG),
    ('IterationSeedHook', 'seed', [2.5], INT),
    ('PixelMemoryBankHook', 'exclude_from_ddp_broadcast', ['no'],
     'True or False'),
    ('MultiSourceSampler', 'batch_size', [0, 2.5], COUNT),
    ('MultiSourceSampler', 'seed', [2.5], INT),
    ('MultiSourceSampler', 'shuffle', ['no'], 'True or False'),
    ('CheckedDenseCL', 'loss_lambda', [-0.1, 1.5, NAN], '[0, 1]'),
    ('CheckedDenseCL', 'momentum', [NAN, INF], '(0, 0.5]'),
    ('CheckedDenseCL', 'head.temperature', [0, NAN], POS),
]
CASES = [pytest.param(row[0], row[1], value, row[3],
                      row[4] if len(row) > 4 else {},
                      id=f'{row[0]}-{row[1]}={value!r}')
         for row in TABLE for value in row[2]]
# (class, option, bad tuple, valid range) of the pair options
PAIRS = [
    ('UnsupBatchAugment', 'unsup_aug.scale', (0, 1), 'unsup_aug.scale[0]=0'),
    ('UnsupBatchAugment', 'unsup_aug.scale', (1, INF), 'scale[1]=inf'),
    ('UnsupBatchAugment', 'unsup_aug.scale', (NAN, 1), 'scale[0]=nan'),
    ('UnsupBatchAugment', 'unsup_aug.scale', (1.5, 0.5), 'lo <= hi'),
    ('UnsupBatchAugment', 'unsup_aug.blur_sigma', (0.1, INF),
     'blur_sigma[1]=inf'),
    ('UnsupBatchAugment', 'unsup_aug.crop_size', (2.5, 4),
     'crop_size[0]=2.5'),
    ('MultiSourceSampler', 'source_ratio', [-1, 1], 'source_ratio[0]=-1'),
    ('MultiSourceSampler', 'source_ratio', [NAN, 1], 'source_ratio[0]=nan'),
    ('MultiSourceSampler', 'source_ratio', [1, INF], 'source_ratio[1]=inf'),
    ('MultiSourceSampler', 'source_ratio', [1, 'a'],
     "source_ratio[1]='a'"),
    ('MultiSourceSampler', 'source_ratio', [0, 0], 'positive sum'),
]


@pytest.mark.parametrize('cls, option, value, valid, extra', CASES)
def test_bad_option_fails_at_build_naming_it(cls, option, value, valid,
                                             extra):
    with pytest.raises(ValueError) as exc:  # OptionTypeError included
        BUILD[cls](**{option.split('.')[-1]: value}, **extra)
    msg = str(exc.value)
    assert msg.startswith(f'{cls}: '), msg
    assert f'{option}={value!r}' in msg and valid in msg, msg
    is_number = isinstance(value, (int, float)) and not isinstance(
        value, bool)
    if not is_number:
        assert isinstance(exc.value, TypeError), msg
    elif not math.isfinite(value) and valid != INT:
        assert 'finite' in msg, msg


@pytest.mark.parametrize('cls, option, value, part', PAIRS)
def test_bad_pair_option_fails_at_build(cls, option, value, part):
    with pytest.raises(ValueError) as exc:
        BUILD[cls](**{option.split('.')[-1]: value})
    msg = str(exc.value)
    assert msg.startswith(f'{cls}: ') and part in msg, msg


# valid edge values (0 = off, 1 = every pixel, ...) keep building
EDGES = [
    ('PixelContrastLoss', {}), ('PixelContrastLoss', dict(
        semi_hard_ratio=1, loss_weight=0, num_pos_keys=1, num_classes=2)),
    ('ReCoLoss', {}), ('ReCoLoss', dict(strong_threshold=1.0,
                                        loss_weight=0, max_chunk_elements=1)),
    ('PixelMemoryBank', {}), ('PixelMemoryBank', dict(memory_size=5,
                                                      seed=-3)),
    ('ContrastFCNHead', {}), ('ReCoFCNHead', {}),
    ('SemiSegmentor', {}), ('SemiSegmentor', dict(
        sup_weight=0., weak_threshold=1.0, strong_threshold=1,
        class_portion=1)), ('SemiSegmentor', dict(unsup_weight=0)),
    ('UnsupBatchAugment', {}), ('UnsupBatchAugment', dict(
        scale=(1, 1), blur_prob=1, flip_prob=0., crop_size=(1, 1))),
    ('MeanTeacherHook', {}), ('MeanTeacherHook', dict(max_decay=0)),
    ('MeanTeacherHook', dict(max_decay=1.0)),  # 'reco': the running mean
    ('MeanTeacherHook', dict(decay_schedule='horizon', horizon=1)),
    ('ContrastWarmupHook', {}), ('ContrastWarmupHook', dict(warmup_iters=0)),
    ('IterationSeedHook', {}), ('IterationSeedHook', dict(seed=-1)),
    ('PixelMemoryBankHook', {}),
    ('MultiSourceSampler', {}), ('MultiSourceSampler', dict(
        source_ratio=[0.5, 1.5])), ('MultiSourceSampler', dict(
            dataset=_concat(3, 0), source_ratio=[1, 0])),
    ('CheckedDenseCL', {}), ('CheckedDenseCL', dict(loss_lambda=0)),
    ('CheckedDenseCL', dict(loss_lambda=1)),
]


@pytest.mark.parametrize('cls, kw', EDGES,
                         ids=[f'{c}-{sorted(k)}' for c, k in EDGES])
def test_defaults_and_valid_edges_build(cls, kw):
    assert BUILD[cls](**kw) is not None


def test_both_semi_weights_zero_is_refused():
    with pytest.raises(ValueError, match='sup_weight=0 and unsup_weight=0'):
        BUILD['SemiSegmentor'](sup_weight=0, unsup_weight=0.)


def test_validator_api():
    assert check_range('X', 'a', 3, 0, 3) == 3
    with pytest.raises(ValueError, match=r'X: a=3 is invalid; it must be a '
                       r'finite number in \[0, 3\) \(why\)'):
        check_range('X', 'a', 3, 0, 3, high_open=True, hint='why')
    with pytest.raises(OptionTypeError, match='not a bool'):
        check_int('X', 'n', True)
    assert check_int('X', 'n', 10**400, 1) == 10**400  # no float overflow
    assert check_range('X', 'n', 10**400, 0) == 10**400
    assert check_probability('X', 'p', 0, zero_ok=True) == 0
    assert issubclass(OptionTypeError, TypeError)


# ------------------------------------------------------------------ sampler
@pytest.mark.parametrize('batch_size, ratio, counts', [
    (4, [4, 1], '[4, 0]'), (3, [1, 1, 1, 1], '[3, 0, 0, 0]'),
    (5, [0, 1, 1], '[1, 2, 2]')])
def test_sampler_gives_each_source_its_share(batch_size, ratio, counts):
    """[4, 1] with batch 4 gave 0 unlabelled samples per batch; a source
    with ratio 0 took the remainder."""
    with pytest.raises(ValueError) as exc:
        BUILD['MultiSourceSampler'](dataset=_concat(*[4] * len(ratio)),
                                    batch_size=batch_size,
                                    source_ratio=ratio)
    msg = str(exc.value)
    for part in (f'source_ratio={ratio}', f'batch_size={batch_size}',
                 counts, 'Fix:'):
        assert part in msg, (part, msg)


def _loader(loader_bs, sampler_bs=4):
    sampler = BUILD['MultiSourceSampler'](batch_size=sampler_bs)
    return DataLoader(sampler.dataset, batch_size=loader_bs,
                      sampler=sampler)


def test_loader_batch_size_must_match_the_sampler():
    check_loader_batch_size(_loader(4))
    check_loader_batch_size(DataLoader(list(range(4)), batch_size=3))
    with pytest.raises(ValueError) as exc:
        check_loader_batch_size(_loader(2))
    msg = str(exc.value)
    for part in ('batch_size=2', 'batch_size=4', 'all-labelled',
                 'train_dataloader.sampler.batch_size'):
        assert part in msg, (part, msg)
    # the hooks run it before the first batch
    model = MODELS.build(semi_cfg(False))
    for hook in (LabelRangeCheckHook(), MeanTeacherHook()):
        runner = SimpleNamespace(model=model, iter=0,
                                 train_dataloader=_loader(2))
        with pytest.raises(ValueError, match='all-labelled'):
            hook.before_train(runner)


def _multi_source_cfg(tmp_path, root, loader_bs, sampler_bs):
    cfg = Config.fromfile(TINY_CFG)
    voc = cfg.train_dataloader.dataset.to_dict()
    voc['data_root'] = root
    cfg.train_dataloader.dataset = dict(
        type='ConcatDataset', datasets=[voc, copy.deepcopy(voc)])
    cfg.train_dataloader.batch_size = loader_bs
    cfg.train_dataloader.sampler = dict(
        type='MultiSourceSampler', batch_size=sampler_bs,
        source_ratio=[1, 1])
    path = tmp_path / f'multi_source_{loader_bs}_{sampler_bs}.py'
    cfg.dump(str(path))
    return cfg, str(path)


def test_train_tool_refuses_loader_batch_size_override(
        monkeypatch, tmp_path, voc_mini_root):
    """``--cfg-options train_dataloader.batch_size=4`` on a config whose
    sampler mixes 2 per batch stops before the first step."""
    cfg, path = _multi_source_cfg(tmp_path, voc_mini_root, 2, 2)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    check_loader_batch_size(loader)  # the real mmengine loader: equal
    work = tmp_path / 'w'
    monkeypatch.setattr(sys, 'argv', [
        'train.py', path, '--work-dir', str(work), '--cfg-options',
        *[f'{k}.dataset.data_root={voc_mini_root}'
          for k in ('val_dataloader', 'test_dataloader')],
        'experiment_name=loader_bs', 'log_level=ERROR',
        'train_dataloader.batch_size=4'
    ])
    with pytest.raises(ValueError, match='batch_size=4') as exc:
        load_tool('train.py').main()
    assert 'sampler.batch_size=2' in str(exc.value)
    assert not list(work.glob('iter_*.pth'))


# ------------------------------------------------------------- memory bank
def test_bank_drops_keys_that_cannot_be_normalised():
    """An fp32 norm overflow (1e30) and an all-zero key used to enter the
    bank as zero vectors and count as filled slots."""
    bank = PixelMemoryBank(num_classes=2, feat_dim=2, memory_size=16,
                           pixel_per_image=8)
    keys = torch.tensor([[0.6, 0.8], [0., 0.], [1e30, 1e30], [NAN, 0.],
                         [INF, 1.], [1., 0.]]).t().reshape(1, 2, 2, 3)
    labels = torch.tensor([[[0, 0, 0], [0, 0, 1]]])
    bank.enqueue(keys, labels)
    assert bank.pixel_count.tolist() == [1, 1]
    assert int(bank.last_nonfinite) == 4
    torch.testing.assert_close(bank.pixel_queue[0, 0],
                               torch.tensor([0.6, 0.8]))
    torch.testing.assert_close(bank.segment_queue[0, 0],
                               torch.tensor([0.6, 0.8]))
    # a class whose keys all cancel out has no segment direction
    bank.enqueue(torch.tensor([[1., 0.], [-1., 0.]]).t().reshape(1, 2, 1, 2),
                 torch.zeros(1, 1, 2, dtype=torch.long))
    assert bank.segment_count.tolist() == [1, 1]
    assert bank.pixel_count.tolist() == [3, 1]
