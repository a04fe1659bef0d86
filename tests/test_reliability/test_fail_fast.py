"""Bad inputs give one clear error at build time or before the first
training step, naming the file or option and the fix."""
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_contrast.engine.hooks import LabelRangeCheckHook
from mmseg_contrast.engine.hooks.label_check_hook import find_bad_labels
from mmseg_contrast.models.losses.pixel_contrast_loss import (
    PixelContrastLoss,
    sample_anchors,
)
from mmseg_contrast.models.losses.reco_loss import ReCoLoss

from helpers.reliab_helpers import TINY_CFG, data_options
from helpers.tool_loading import load_tool

BN = dict(type='BN', requires_grad=True)


def _run_train(monkeypatch, argv):
    monkeypatch.setattr(sys, 'argv', ['train.py'] + argv)
    return load_tool('train.py').main()


def _head(**kw):
    cfg = dict(type='ContrastFCNHead', in_channels=8, channels=8,
               num_convs=1, concat_input=False, num_classes=3, norm_cfg=BN,
               proj_channels=8,
               contrast_loss=dict(type='PixelContrastLoss', max_views=2))
    cfg.update(kw)
    return cfg


def _samples(labels):
    out = []
    for i, lab in enumerate(labels):
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=torch.as_tensor(lab)[None])
        ds.set_metainfo(dict(seg_map_path=f'ann/{i}.png',
                             reduce_zero_label=False,
                             img_shape=tuple(lab.shape),
                             ori_shape=tuple(lab.shape)))
        out.append(ds)
    return out


# ------------------------------------------------------------------ labels
def test_find_bad_labels():
    lab = torch.tensor([[0, 1, 255], [2, 40, 41]])
    assert find_bad_labels(lab, 3, 255) == [40, 41]
    assert find_bad_labels(lab, 42, 255) == []
    assert find_bad_labels(torch.tensor([[-1, 0]]), 3, 255) == [-1]
    assert find_bad_labels(lab.to(torch.uint8), 3, 255) == [40, 41]


def test_label_hook_names_file_num_classes_and_fix():
    model = MODELS.build(dict(
        type='EncoderDecoder',
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                      base_channels=8, out_indices=(3, ), norm_cfg=BN),
        decode_head=dict(type='FCNHead', in_channels=64, channels=8,
                         num_convs=1, num_classes=21, norm_cfg=BN),
        auxiliary_head=dict(type='FCNHead', in_channels=64, channels=8,
                            num_convs=1, num_classes=21, norm_cfg=BN)))
    dataset = SimpleNamespace(metainfo=dict(classes=tuple('x' * 21)))
    runner = SimpleNamespace(
        model=model, train_dataloader=SimpleNamespace(dataset=dataset))
    hook = LabelRangeCheckHook()
    hook.before_train(runner)
    assert len(hook._limits) == 1  # decode + auxiliary head: one limit
    ok = _samples([torch.randint(0, 21, (8, 8)), torch.full((8, 8), 255)])
    unlabeled = SegDataSample()  # semi-supervised batches: skipped
    hook.before_train_iter(runner, 0, dict(data_samples=ok + [unlabeled]))
    bad = _samples([torch.zeros(8, 8, dtype=torch.long),
                    torch.tensor([[40, 255], [3, 21]])])
    with pytest.raises(ValueError) as exc:
        hook.before_train_iter(runner, 1, dict(data_samples=bad))
    msg = str(exc.value)
    for part in ('ann/1.png', '[21, 40]', 'num_classes=21',
                 'ignore_index=255', 'model.decode_head', 'reduce_zero_label',
                 'declares 21 classes', 'label_map'):
        assert part in msg, (part, msg)


def test_train_tool_stops_before_the_first_step(monkeypatch, tmp_path,
                                                voc_mini_root):
    """VOC labels go up to 20; a 5-class model is stopped at the first batch
    holding a larger value, with that label file in the message."""
    work = tmp_path / 'w'
    with pytest.raises(ValueError, match='num_classes=5') as exc:
        _run_train(monkeypatch, [
            TINY_CFG, '--work-dir', str(work), '--cfg-options',
            *data_options(voc_mini_root, 'labels_5'),
            'model.decode_head.num_classes=5'
        ])
    msg = str(exc.value)
    assert 'Label file ' in msg and voc_mini_root in msg and '.png' in msg
    assert not list(work.glob('iter_*.pth'))


# ------------------------------------------------------------- memory bank
@pytest.mark.parametrize('key,value,head_key', [
    ('num_classes', 2, 'num_classes'), ('feat_dim', 4, 'proj_channels'),
    ('ignore_index', 0, 'ignore_index')])
def test_bank_must_match_its_head(key, value, head_key):
    bank = dict(type='PixelMemoryBank', memory_size=64, **{key: value})
    with pytest.raises(ValueError) as exc:
        MODELS.build(_head(memory_bank=bank))
    msg = str(exc.value)
    assert f'memory_bank.{key}={value}' in msg and head_key in msg
    assert f'Remove memory_bank.{key}' in msg
    head = MODELS.build(_head(memory_bank=dict(type='PixelMemoryBank',
                                               memory_size=64)))
    assert (head.memory_bank.num_classes, head.memory_bank.feat_dim) == (3, 8)


def test_loss_num_classes_bound_to_head():
    head = MODELS.build(_head())
    assert head.contrast_loss.num_classes == 3
    with pytest.raises(ValueError, match='contrast_loss.num_classes=5'):
        MODELS.build(_head(contrast_loss=dict(type='PixelContrastLoss',
                                              num_classes=5)))


def test_bank_without_hook_fails_in_the_first_step():
    head = MODELS.build(_head(memory_bank=dict(type='PixelMemoryBank',
                                               memory_size=64)))
    head.train()
    feats = [torch.randn(2, 8, 8, 8)]
    samples = _samples([torch.randint(0, 3, (16, 16)) for _ in range(2)])
    with pytest.raises(RuntimeError, match='PixelMemoryBankHook'):
        head.loss(feats, samples, dict())
    head.memory_bank_consumer = 'manual'  # a hand-written loop opts in
    assert 'loss_contrast' in head.loss(feats, samples, dict())


def test_train_tool_with_bank_but_no_hook(monkeypatch, tmp_path,
                                          voc_mini_root):
    work = tmp_path / 'w'
    with pytest.raises(RuntimeError, match='PixelMemoryBankHook') as exc:
        _run_train(monkeypatch, [
            TINY_CFG, '--work-dir', str(work), '--cfg-options',
            *data_options(voc_mini_root, 'bank_no_hook'),
            'model.decode_head.type=ContrastFCNHead',
            'model.decode_head.proj_channels=8',
            'model.decode_head.memory_bank.type=PixelMemoryBank',
            'model.decode_head.memory_bank.memory_size=64'
        ])
    assert 'loss_contrast would be 0' in str(exc.value)
    assert not list(work.glob('iter_*.pth'))


# ------------------------------------------------------------------ losses
def test_in_batch_contrast_ignores_labels_beyond_num_classes():
    g = torch.Generator().manual_seed(0)
    embed = F.normalize(torch.randn(2, 8, 8, 8, generator=g), dim=1)
    lab = torch.randint(0, 3, (2, 8, 8), generator=g)
    lab[:, :, :3] = 7  # not a class of a 3-class model
    pred = torch.randint(0, 3, (2, 8, 8), generator=g)
    unbound = sample_anchors(embed, lab, pred, 64, 4)
    assert 7 in unbound.labels.tolist()  # the reference behaviour
    bound = sample_anchors(embed, lab, pred, 64, 4, num_classes=3)
    assert 7 not in bound.labels.tolist()
    as_ignore = torch.where(lab == 7, torch.full_like(lab, 255), lab)
    loss = PixelContrastLoss(max_samples=64, max_views=4, num_classes=3)
    ref = PixelContrastLoss(max_samples=64, max_views=4)
    torch.testing.assert_close(
        loss(embed, lab, pred, generator=torch.Generator().manual_seed(1)),
        ref(embed, as_ignore, pred,
            generator=torch.Generator().manual_seed(1)))


def test_reco_nan_input_is_named():
    g = torch.Generator().manual_seed(0)
    rep = torch.randn(2, 8, 6, 6, generator=g)
    lab = torch.randint(0, 3, (2, 6, 6), generator=g)
    prob = torch.softmax(torch.randn(2, 3, 6, 6, generator=g), 1)
    loss = ReCoLoss(num_queries=4, num_negatives=4)
    assert torch.isfinite(loss(rep, lab, prob, generator=g))
    lab[0, 0, 1] = 2
    rep[0, 3, 0, 1] = float('nan')  # one value at a class-2 pixel
    with pytest.raises(FloatingPointError, match='NaN or Inf') as e:
        loss(rep, lab, prob, generator=g)
    assert 'multinomial' in str(e.value) and 'lr' in str(e.value)
