import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.models.decode_heads import ASPPHead
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_contrast.models.decode_heads.reco_head import (
    ReCoMixin,
    downsample_labels,
)

NUM_CLASSES = 4
BN = dict(type='BN', requires_grad=True)
RECO = dict(type='ReCoLoss', num_queries=16, num_negatives=32)

HEADS = {
    'ReCoASPPHead':
    dict(in_channels=16, channels=8, dilations=(1, 2)),
    'ReCoDepthwiseSeparableASPPHead':
    dict(in_channels=16, channels=8, dilations=(1, 2), c1_in_channels=8,
         c1_channels=4, in_index=1),
    'ReCoFCNHead':
    dict(in_channels=16, channels=8, num_convs=1),
    'ReCoPSPHead':
    dict(in_channels=16, channels=8, pool_scales=(1, 2), in_index=1),
    'ReCoUPerHead':
    dict(in_channels=[8, 16], channels=8, pool_scales=(1, 2),
         in_index=[0, 1]),
    'ReCoSegformerHead':
    dict(in_channels=[8, 16], channels=8, in_index=[0, 1]),
}
MULTI_LEVEL = ('ReCoDepthwiseSeparableASPPHead', 'ReCoPSPHead',
               'ReCoUPerHead', 'ReCoSegformerHead')


def make_head(name, **kw):
    cfg = dict(type=name, num_classes=NUM_CLASSES, norm_cfg=BN,
               proj_channels=6, reco_loss=RECO, dropout_ratio=0.0)
    cfg.update(HEADS[name])
    cfg.update(kw)
    return MODELS.build(cfg)


def inputs_for(name, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    if name in MULTI_LEVEL:
        return [torch.randn(B, 8, 16, 16, generator=g),
                torch.randn(B, 16, 8, 8, generator=g)]
    return [torch.randn(B, 16, 8, 8, generator=g)]


def data_samples(B=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(B):
        ds = SegDataSample()
        gt = torch.randint(0, NUM_CLASSES, (1, size, size), generator=g)
        gt[:, :2] = 255
        ds.gt_sem_seg = PixelData(data=gt)
        ds.set_metainfo(dict(img_shape=(size, size), pad_shape=(size, size)))
        out.append(ds)
    return out


@pytest.mark.parametrize('name', sorted(HEADS))
def test_head_trains_a_step_and_forward_returns_logits(name):
    torch.manual_seed(0)
    head = make_head(name)
    head.train()
    x = inputs_for(name)
    logits = head(x)
    assert isinstance(logits, torch.Tensor)
    assert logits.shape[:2] == (2, NUM_CLASSES)
    losses = head.loss(x, data_samples(), None)
    assert set(losses) == {'loss_ce', 'acc_seg', 'loss_reco'}
    assert torch.isfinite(losses['loss_reco']) and losses['loss_reco'] > 0
    optim = torch.optim.SGD(head.parameters(), lr=0.1)
    before = {k: v.detach().clone() for k, v in head.named_parameters()}
    optim.zero_grad()
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    # the representation head gets gradient only through ReCo
    assert head.reco_proj.layers[1].weight.grad.abs().sum() > 0
    optim.step()
    changed = {k for k, v in head.named_parameters()
               if not torch.equal(v, before[k])}
    assert any(k.startswith('reco_proj.') for k in changed)
    assert 'conv_seg.weight' in changed
    # inference path: logits only, and it equals the loss-time logits' head
    head.eval()
    with torch.no_grad():
        out = head.predict(x, [dict(img_shape=(32, 32),
                                    pad_shape=(32, 32))] * 2, None)
    assert out.shape == (2, NUM_CLASSES, 32, 32)


def test_reco_weight_zero_vs_reco_gradient_reaches_features():
    """ReCo changes the gradient of the shared feature extractor."""
    name = 'ReCoASPPHead'
    torch.manual_seed(0)
    head = make_head(name)
    x = inputs_for(name)
    ds = data_samples()
    grads = []
    for w in (0.0, 1.0):
        head.reco_loss.loss_weight = w
        head.zero_grad()
        losses = head.loss(x, ds, None)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        grads.append(head.bottleneck.conv.weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_checkpoint_loads_into_plain_head():
    head = make_head('ReCoASPPHead')
    plain = MODELS.build(
        dict(type='ASPPHead', num_classes=NUM_CLASSES, norm_cfg=BN,
             **HEADS['ReCoASPPHead']))
    assert isinstance(plain, ASPPHead) and not isinstance(plain, ReCoMixin)
    res = plain.load_state_dict(head.state_dict(), strict=False)
    assert res.missing_keys == []
    assert res.unexpected_keys and all(
        k.startswith('reco_proj.') for k in res.unexpected_keys)
    head.eval()
    plain.eval()
    x = inputs_for('ReCoASPPHead')
    torch.testing.assert_close(head(x), plain(x))


def test_downsample_labels_is_legacy_nearest():
    y = torch.arange(36).view(1, 6, 6)
    d = downsample_labels(y, (3, 2))
    # src = floor(dst * in / out)
    assert d.tolist() == [[[0, 3], [12, 15], [24, 27]]]
    assert d.dtype == y.dtype


def test_reco_loss_from_uses_labels_prob_and_masks():
    head = make_head('ReCoDepthwiseSeparableASPPHead')
    x = inputs_for('ReCoDepthwiseSeparableASPPHead')
    ds = data_samples()
    with head.deferred_reco() as cache:
        losses = head.loss(x, ds, None)
    assert 'loss_reco' not in losses and len(cache) == 1
    feat, logits = cache[0]
    gt = head.stack_gt(ds)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    # value = ReCoLoss on (proj(feat), nearest labels, softmax(logits))
    v = head.reco_loss_from(feat, logits, gt, generator=g())
    rep = head.reco_proj(feat)
    lab = downsample_labels(gt, rep.shape[-2:])
    prob = torch.softmax(logits.detach(), 1)
    expected = head.reco_loss(rep, lab, prob, generator=g())
    assert v.item() == pytest.approx(expected.item(), rel=1e-6)
    # valid mask False == ignore
    mask = torch.ones_like(gt, dtype=torch.bool)
    mask[:, :, 16:] = False
    gt_masked = gt.masked_fill(~mask, 255)
    v1 = head.reco_loss_from(feat, logits, gt, valid_masks=mask,
                             generator=g())
    v2 = head.reco_loss_from(feat, logits, gt_masked, generator=g())
    assert v1.item() == pytest.approx(v2.item(), rel=1e-6)
    assert v1.item() != pytest.approx(v.item(), rel=1e-3)
    v0 = head.reco_loss_from(feat, logits, gt,
                             valid_masks=torch.zeros_like(mask),
                             generator=g())
    assert v0.item() == 0 and v0.requires_grad


def test_pooled_parts_are_projected_separately_and_concatenated():
    head = make_head('ReCoASPPHead')
    head.train()
    x1, x2 = inputs_for('ReCoASPPHead', seed=1), inputs_for(
        'ReCoASPPHead', seed=2)
    ds1, ds2 = data_samples(seed=1), data_samples(seed=2)
    with head.deferred_reco() as cache:
        head.loss(x1, ds1, None)
        head.loss(x2, ds2, None)
    assert len(cache) == 2
    (f1, z1), (f2, z2) = cache
    y1, y2 = head.stack_gt(ds1), head.stack_gt(ds2)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    pooled = head.reco_loss_from([f1, f2], [z1, z2], [y1, y2], generator=g())
    rep = torch.cat([head.reco_proj(f1), head.reco_proj(f2)])
    lab = downsample_labels(torch.cat([y1, y2]), rep.shape[-2:])
    prob = torch.softmax(torch.cat([z1, z2]).detach(), 1)
    expected = head.reco_loss(rep, lab, prob, generator=g())
    assert pooled.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match='same number of parts'):
        head.reco_loss_from([f1, f2], [z1], [y1, y2])
    # outside the block the head is back to normal
    assert 'loss_reco' in head.loss(x1, ds1, None)


def test_head_ignore_index_is_mapped_to_the_loss_ignore_index():
    head = make_head('ReCoFCNHead', ignore_index=100,
                     reco_loss=dict(RECO, ignore_index=255))
    x = inputs_for('ReCoFCNHead')
    ds = data_samples()
    for d in ds:
        d.gt_sem_seg.data[d.gt_sem_seg.data == 255] = 100
    losses = head.loss(x, ds, None)  # would raise "outside [0, C)"
    assert torch.isfinite(losses['loss_reco'])


def test_segmentor_train_step_with_type_swap(repo_root):
    cfg = Config.fromfile(
        osp.join(repo_root, 'configs/baseline/deeplabv3_mnv2_aal_cpu.py'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    model_cfg.decode_head.type = 'ReCoASPPHead'
    model_cfg.decode_head.reco_loss = RECO
    model_cfg.data_preprocessor.size = (48, 48)
    model = MODELS.build(model_cfg)
    model.init_weights()
    optim = build_optim_wrapper(
        model, dict(type='OptimWrapper',
                    optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    g = torch.Generator().manual_seed(0)
    batch = dict(inputs=[], data_samples=[])
    for _ in range(2):
        batch['inputs'].append(
            torch.randint(0, 255, (3, 48, 48), generator=g).to(torch.uint8))
        ds = SegDataSample()
        gt = torch.zeros(1, 48, 48, dtype=torch.long)
        gt[:, 10:30, 5:25] = 3
        gt[:, 30:, 30:] = 7
        ds.gt_sem_seg = PixelData(data=gt)
        ds.set_metainfo(dict(img_shape=(48, 48), ori_shape=(48, 48)))
        batch['data_samples'].append(ds)
    model.train()
    log_vars = model.train_step(batch, optim)
    assert 'decode.loss_reco' in log_vars and 'decode.loss_ce' in log_vars
    assert log_vars['decode.loss_reco'] > 0
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 48, 48), mode='tensor')
    assert out.shape[:2] == (1, 16)
