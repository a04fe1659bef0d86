"""Pixel-contrast heads (``PixelContrastMixin``): type swap on stock heads."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_contrast.models.decode_heads import PixelContrastMixin

NUM_CLASSES = 3
CHS = (8, 8, 16, 16)


@MODELS.register_module(force=True)
class _TinyContrastTestBackbone(nn.Module):
    """4-level feature pyramid (strides 2, 4, 4, 4), a few k params."""

    def __init__(self, channels=CHS):
        super().__init__()
        self.stem = nn.Conv2d(3, channels[0], 3, stride=2, padding=1)
        self.convs = nn.ModuleList()
        prev = channels[0]
        for i, c in enumerate(channels[1:]):
            self.convs.append(
                nn.Conv2d(prev, c, 3, stride=2 if i == 0 else 1, padding=1))
            prev = c

    def init_weights(self):
        pass

    def forward(self, x):
        x = torch.relu(self.stem(x))
        outs = [x]
        for conv in self.convs:
            x = torch.relu(conv(x))
            outs.append(x)
        return tuple(outs)


BN = dict(type='BN', requires_grad=True)
# small sampling numbers so the tiny 8x8 embedding maps hold anchors
LOSS = dict(type='PixelContrastLoss', temperature=0.1, base_temperature=0.07,
            max_samples=64, max_views=4, loss_weight=0.1)


def _head(kind, contrast=True, memory=False):
    prefix = 'Contrast' if contrast else ''
    extra = {}
    if contrast:
        extra = dict(proj_channels=16, contrast_loss=copy.deepcopy(LOSS))
        if memory:
            extra['memory_bank'] = dict(
                type='PixelMemoryBank', memory_size=64, pixel_per_image=4)
    common = dict(num_classes=NUM_CLASSES, norm_cfg=BN, align_corners=False)
    if kind == 'aspp':
        return dict(type=prefix + 'ASPPHead', in_channels=16, in_index=3,
                    channels=16, dilations=(1, 2), dropout_ratio=0.1,
                    **common, **extra)
    if kind == 'sep_aspp':
        return dict(
            type=prefix + 'DepthwiseSeparableASPPHead', in_channels=16,
            in_index=3, channels=16, dilations=(1, 2), c1_in_channels=8,
            c1_channels=8, dropout_ratio=0.1, **common, **extra)
    if kind == 'fcn':  # HRNetV2 style
        return dict(
            type=prefix + 'FCNHead', in_channels=list(CHS),
            in_index=(0, 1, 2, 3), channels=sum(CHS),
            input_transform='resize_concat', kernel_size=1, num_convs=1,
            concat_input=False, dropout_ratio=-1, **common, **extra)
    raise ValueError(kind)


def _model_cfg(kind, contrast=True, memory=False):
    pre = dict(type='SegDataPreProcessor', mean=[0., 0., 0.],
               std=[1., 1., 1.], pad_val=0, seg_pad_val=255)
    backbone = dict(type='_TinyContrastTestBackbone')
    if kind == 'ocr':
        stage0 = dict(
            type='FCNHead', in_channels=list(CHS), in_index=(0, 1, 2, 3),
            channels=sum(CHS), input_transform='resize_concat',
            kernel_size=1, num_convs=1, concat_input=False,
            dropout_ratio=-1, num_classes=NUM_CLASSES, norm_cfg=BN,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4))
        stage1 = dict(
            type=('Contrast' if contrast else '') + 'OCRHead',
            in_channels=list(CHS), in_index=(0, 1, 2, 3), channels=16,
            ocr_channels=8, input_transform='resize_concat', dropout_ratio=-1,
            num_classes=NUM_CLASSES, norm_cfg=BN)
        if contrast:
            stage1.update(proj_channels=16, contrast_loss=copy.deepcopy(LOSS))
            if memory:
                stage1['memory_bank'] = dict(
                    type='PixelMemoryBank', memory_size=64, pixel_per_image=4)
        return dict(type='CascadeEncoderDecoder', num_stages=2,
                    data_preprocessor=pre, backbone=backbone,
                    decode_head=[stage0, stage1],
                    test_cfg=ConfigDict(mode='whole'))
    return dict(type='EncoderDecoder', data_preprocessor=pre,
                backbone=backbone,
                decode_head=_head(kind, contrast, memory),
                test_cfg=ConfigDict(mode='whole'))


def _batch(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.rand(n, 3, size, size, generator=g)
    samples = []
    for i in range(n):
        # left half class i % C, right half class (i+1) % C, a few ignore px,
        # image content correlated with the label so the loss is non-trivial
        lab = torch.full((size, size), i % NUM_CLASSES, dtype=torch.long)
        lab[:, size // 2:] = (i + 1) % NUM_CLASSES
        lab[:2, :2] = 255
        imgs[i, 0] += lab.clamp(max=NUM_CLASSES).float()
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=lab[None])
        ds.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                             pad_shape=(size, size)))
        samples.append(ds)
    return imgs, samples


def _contrast_heads(model):
    return [m for m in model.modules() if isinstance(m, PixelContrastMixin)]


KINDS = ['aspp', 'sep_aspp', 'fcn', 'ocr']
LOSS_KEY = {k: 'decode.loss_contrast' for k in KINDS}
LOSS_KEY['ocr'] = 'decode_1.loss_contrast'


@pytest.mark.parametrize('kind', KINDS)
def test_head_trains_one_step_and_forward_returns_logits(kind):
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg(kind))
    model.train()
    heads = _contrast_heads(model)
    assert len(heads) == 1
    head = heads[0]
    imgs, samples = _batch()
    losses = model.loss(imgs, samples)
    assert LOSS_KEY[kind] in losses
    assert torch.isfinite(losses[LOSS_KEY[kind]])
    assert losses[LOSS_KEY[kind]].requires_grad
    total, _ = model.parse_losses(losses)
    # the contrast term trains the projection head (and the feature)
    proj_before = [p.detach().clone() for p in head.proj_head.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    total.backward()
    grads = [p.grad for p in head.proj_head.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(
        proj_before, head.proj_head.parameters()))
    # forward (tensor mode) returns the logits tensor, not a tuple/dict
    model.eval()
    with torch.no_grad():
        out = model(imgs, samples, mode='tensor')
    assert isinstance(out, torch.Tensor)
    assert out.shape[:2] == (2, NUM_CLASSES)
    # nothing was captured outside loss()
    assert head._aux_cache is None


def test_contrast_term_equals_weighted_loss_on_embedding():
    """The reported term is loss(normalize(proj(feat)), gt, argmax(logits))."""
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg('aspp'))
    model.train()
    head = _contrast_heads(model)[0]
    imgs, samples = _batch()
    captured = {}
    orig = head.contrast_loss.forward

    def spy(embed, seg_label, seg_pred, *a, **kw):
        captured.update(embed=embed, seg_label=seg_label, seg_pred=seg_pred)
        return orig(embed, seg_label, seg_pred, *a, **kw)

    head.contrast_loss.forward = spy
    # fix the RNG so the spy call and the reference call sample the same
    torch.manual_seed(1)
    losses = model.loss(imgs, samples)
    e, lab, pred = captured['embed'], captured['seg_label'], \
        captured['seg_pred']
    assert e.shape[1] == 16
    torch.testing.assert_close(e.norm(dim=1), torch.ones_like(e[:, 0]))
    assert lab.shape == (2, 32, 32) and lab.dtype == torch.long
    assert pred.shape == e.shape[:1] + e.shape[2:]
    assert pred.dtype == torch.long
    assert losses['decode.loss_contrast'].requires_grad


def test_checkpoint_loads_into_plain_config_and_predicts_identically():
    torch.manual_seed(0)
    for kind in KINDS:
        contrast = MODELS.build(_model_cfg(kind, memory=True))
        contrast.train()
        # this test enqueues by hand (no PixelMemoryBankHook)
        _contrast_heads(contrast)[0].memory_bank_consumer = 'manual'
        imgs, samples = _batch()
        total, _ = contrast.parse_losses(contrast.loss(imgs, samples))
        total.backward()
        head = _contrast_heads(contrast)[0]
        keys, labels = head.pop_pending_keys()
        head.memory_bank.enqueue(keys, labels)
        state = contrast.state_dict()

        plain = MODELS.build(_model_cfg(kind, contrast=False))
        result = plain.load_state_dict(state, strict=False)
        assert not result.missing_keys, (kind, result.missing_keys)
        unexpected = set(result.unexpected_keys)
        assert unexpected, kind
        assert all('.proj_head.' in k or '.memory_bank.' in k
                   for k in unexpected), (kind, unexpected)
        assert any('.memory_bank.pixel_queue' in k for k in unexpected)

        contrast.eval()
        plain.eval()
        with torch.no_grad():
            a = contrast.predict(imgs, copy.deepcopy(samples))
            b = plain.predict(imgs, copy.deepcopy(samples))
        for x, y in zip(a, b):
            torch.testing.assert_close(x.seg_logits.data, y.seg_logits.data,
                                       rtol=0, atol=0)
            assert torch.equal(x.pred_sem_seg.data, y.pred_sem_seg.data)


def test_ocr_cascade_stage0_rerun_is_untouched():
    """CascadeEncoderDecoder re-runs stage 0's forward for stage 1: the loss
    keys are those of both stages and only stage 1 has the contrast term."""
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg('ocr'))
    model.train()
    imgs, samples = _batch()
    losses = model.loss(imgs, samples)
    assert {'decode_0.loss_ce', 'decode_1.loss_ce',
            'decode_1.loss_contrast'} <= set(losses)
    assert not any(k.startswith('decode_0.') and 'contrast' in k
                   for k in losses)


def test_warmup_scale_zero_skips_loss_but_keeps_graph_connected():
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg('aspp'))
    model.train()
    head = _contrast_heads(model)[0]
    head.contrast_weight_scale = 0.
    assert head.contrast_weight == 0.
    called = []
    head.contrast_loss.register_forward_hook(lambda *a: called.append(1))
    imgs, samples = _batch()
    losses = model.loss(imgs, samples)
    assert not called
    val = losses['decode.loss_contrast']
    assert val.item() == 0.
    val.backward()
    # every projection parameter takes part in the graph (DDP-safe)
    assert all(p.grad is not None for p in head.proj_head.parameters())
    # scale 1 -> the loss is computed with its own loss_weight
    head.contrast_weight_scale = 1.
    assert head.contrast_weight == pytest.approx(0.1)
    model.loss(imgs, samples)
    assert called


def test_connected_zero_is_finite_for_a_large_fp16_embedding():
    """The warm-up zero must not sum the map in fp16: 131072 ones overflow
    65504 (inf * 0 = NaN)."""
    head = MODELS.build(_head('aspp'))
    embed = torch.ones(2, 16, 64, 64, dtype=torch.float16,
                       requires_grad=True)
    value = head._connected_zero(embed)
    assert torch.isfinite(value) and value.item() == 0.
    value.backward()
    assert torch.equal(embed.grad, torch.zeros_like(embed))


def test_memory_mode_stashes_detached_keys_at_embedding_resolution():
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg('fcn', memory=True))
    model.train()
    head = _contrast_heads(model)[0]
    head.memory_bank_consumer = 'manual'  # the test pops the keys itself
    bank = head.memory_bank
    # defaults filled from the head
    assert (bank.num_classes, bank.feat_dim,
            bank.ignore_index) == (NUM_CLASSES, 16, 255)
    imgs, samples = _batch()
    losses = model.loss(imgs, samples)
    assert 'decode.loss_contrast' in losses
    keys, labels = head.pop_pending_keys()
    assert head.pop_pending_keys() is None
    assert not keys.requires_grad
    assert keys.shape[:2] == (2, 16) and labels.shape == (2, ) + \
        keys.shape[2:]
    # labels are the legacy-'nearest' downsampled GT: gt[::s, ::s], with
    # the ignore pixel in the corner kept as 255
    gt = torch.stack([ds.gt_sem_seg.data[0] for ds in samples])
    stride = gt.shape[-1] // keys.shape[-1]
    assert torch.equal(labels, gt[:, ::stride, ::stride])
    assert labels[0, 0, 0] == 255


def test_bad_config_errors():
    cfg = _head('aspp')
    cfg['proj_channels'] = 0
    with pytest.raises(ValueError, match='proj_channels'):
        MODELS.build(cfg)
    cfg = _head('aspp')
    cfg['memory_bank'] = 'bank'
    with pytest.raises(TypeError, match='memory_bank'):
        MODELS.build(cfg)


@pytest.mark.parametrize('kind', KINDS)
def test_proj_in_backbone_embeds_the_head_input(kind):
    """``proj_in='backbone'``: the projection embeds the head's transformed
    backbone input (the reference's input), ``in_channels`` wide."""
    torch.manual_seed(0)
    cfg = _model_cfg(kind)
    heads = cfg['decode_head']
    head_cfg = heads[-1] if isinstance(heads, list) else heads
    head_cfg['proj_in'] = 'backbone'
    model = MODELS.build(cfg)
    model.train()
    head = _contrast_heads(model)[0]
    assert head.proj_in == 'backbone'
    width = 16 if kind in ('aspp', 'sep_aspp') else sum(CHS)
    assert head.in_channels == width
    assert head.proj_head.layers[0].conv.in_channels == width
    seen = {}
    head.proj_head.register_forward_hook(
        lambda m, i, o: seen.update(x=i[0], embed=o))
    imgs, samples = _batch()
    losses = model.loss(imgs, samples)
    assert torch.isfinite(losses[LOSS_KEY[kind]])
    with torch.no_grad():
        feats = model.extract_feat(imgs)
        expected = head._transform_inputs(feats)
    torch.testing.assert_close(seen['x'], expected)
    losses[LOSS_KEY[kind]].backward()
    assert all(p.grad is not None for p in head.proj_head.parameters())
    # the default is the pre-classifier feature (channels wide)
    plain = MODELS.build(_model_cfg(kind))
    assert _contrast_heads(plain)[0].proj_in == 'pre_classifier'


def test_contrast_loss_gets_the_heads_ignore_index(monkeypatch):
    import mmseg_contrast.models.losses.pixel_contrast_loss as pcl
    sampled = []
    orig = pcl.sample_anchors

    def spy(*args, **kwargs):
        out = orig(*args, **kwargs)
        sampled.append(set(out.labels.tolist()))
        return out

    monkeypatch.setattr(pcl, 'sample_anchors', spy)
    for ignore, absent in ((255, set()), (1, {1})):
        imgs, samples = _batch(n=3)  # classes 0, 1, 2
        for ds in samples:  # the corner pixels carry the head's ignore
            gt = ds.gt_sem_seg.data
            gt[gt == 255] = ignore
        cfg = _model_cfg('aspp')
        cfg['decode_head']['ignore_index'] = ignore
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        model.train()
        head = _contrast_heads(model)[0]
        assert head.contrast_loss.ignore_index == ignore
        sampled.clear()
        model.loss(imgs, samples)
        assert sampled and sampled[0]
        assert not sampled[0] & absent
        if not absent:
            assert 1 in sampled[0]
    cfg = _head('aspp')
    cfg.update(ignore_index=1, contrast_loss=dict(LOSS, ignore_index=255))
    with pytest.raises(ValueError, match='ignore_index=255 differs'):
        MODELS.build(cfg)
    cfg = _head('aspp')
    cfg['proj_in'] = 'layer4'
    with pytest.raises(ValueError, match='proj_in must be one of'):
        MODELS.build(cfg)
