"""SemiSegmentor: train step, frozen eval-mode teacher, loss keys, pseudo
label weighting, checkpoints that load into the plain config."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmengine.runner import load_checkpoint, save_checkpoint
from mmseg.registry import MODELS

from mmseg_contrast.models.segmentors.semi_loss_utils import (
    class_balanced_mask,
)

from helpers.devices import DEVICES
from helpers.semi_helpers import (
    NUM_CLASSES,
    make_batch,
    quiet_init,
    semi_cfg,
    tiny_segmentor_cfg,
)


def _build(reco=True, **train_cfg):
    torch.manual_seed(0)
    return quiet_init(MODELS.build(semi_cfg(reco, **train_cfg)))


def _perturb_student(model):
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(torch.randn_like(p) * 0.1)


def test_train_step_losses_and_teacher_has_no_grad():
    model = _build()
    assert all(not p.requires_grad for p in model.teacher.parameters())
    ow = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = [p.clone() for p in model.teacher.parameters()]
    model.train()
    out = model.train_step(make_batch(), ow)
    for key in ('sup.decode.loss_ce', 'sup.aux.loss_ce',
                'unsup.decode.loss_ce', 'unsup.aux.loss_ce',
                'reco.loss_reco', 'sup.decode.acc_seg',
                'unsup.pseudo_conf_ratio', 'unsup.pseudo_valid_ratio'):
        assert key in out, key
    total = sum(v for k, v in out.items() if 'loss' in k and k != 'loss')
    assert torch.allclose(out['loss'], total)
    assert out['reco.loss_reco'] > 0
    for k in out:  # diagnostics never count as losses
        if 'ratio' in k or 'acc' in k:
            assert 'loss' not in k
    # the optimiser step moved the student, not the teacher
    assert all(torch.equal(a, b)
               for a, b in zip(before, model.teacher.parameters()))
    # gradients: student (incl. the ReCo representation head) only
    batch = model.data_preprocessor(make_batch(seed=1), True)
    loss, _ = model.parse_losses(model.loss(**batch))
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.decode_head.reco_proj.parameters())
    assert model.student.backbone.stem[0].weight.grad.abs().sum() > 0


def test_teacher_stays_in_eval_mode():
    model = _build()
    model.train()
    assert model.student.training and model.training
    assert not any(m.training for m in model.teacher.modules())
    model.eval()
    assert not model.student.training
    model.train()
    assert not model.teacher.training
    # ReCo's own choice (teacher in train mode) is available on request
    m2 = _build(teacher_mode='train')
    m2.train()
    assert m2.teacher.training
    m2.eval()
    assert not m2.teacher.training


def test_teacher_eval_mode_keeps_running_stats_during_train_step():
    model = _build()
    ow = OptimWrapper(torch.optim.SGD(model.student.parameters(), lr=0.0))
    stats = {k: v.clone() for k, v in model.teacher.state_dict().items()
             if 'running' in k}
    model.train()
    model.train_step(make_batch(), ow)
    now = model.teacher.state_dict()
    assert all(torch.equal(v, now[k]) for k, v in stats.items())


@pytest.mark.parametrize('device', DEVICES)
def test_pseudo_labels_ignore_padding(device):
    model = _build(reco=False).to(device)
    data = make_batch(n_lab=1, n_unl=2)
    data['inputs'][2] = data['inputs'][2][:, :20, :24]
    data['data_samples'][2].set_metainfo(dict(img_shape=(20, 24)))
    data['data_samples'][2].pop('img_strong')
    batch = model.data_preprocessor(data, True)
    labels, conf = model.get_pseudo_labels(
        batch['inputs']['unsup_weak'], batch['data_samples']['unsup'])
    assert labels.shape == (2, 32, 32) and labels.device.type == device
    assert bool((labels[1, 20:] == 255).all())
    assert bool((labels[1, :, 24:] == 255).all())
    assert bool((conf[1, 20:] == 0).all())
    assert bool((labels[1, :20, :24] < NUM_CLASSES).all())
    assert bool((conf[1, :20, :24] > 0).all())
    # the unpadded image is untouched
    assert bool((labels[0] < NUM_CLASSES).all() and (conf[0] > 0).all())


@pytest.mark.parametrize('weighting', ['ratio', 'threshold', 'class_balanced'])
def test_unsup_loss_weighting(weighting, monkeypatch):
    """ReCo's per-image ratio eta_b = #(conf >= 0.97) / #valid multiplies
    the pixel CE; 'threshold' ignores pixels below weak_threshold."""
    model = _build(reco=False, mix_mode='none', sup_weight=0.,
                   unsup_weighting=weighting)
    data = make_batch(n_lab=0, n_unl=2, strong=False)
    batch = model.data_preprocessor(data, True)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, NUM_CLASSES, (2, 32, 32), generator=g)
    labels[0, :4] = 255
    conf = torch.rand(2, 32, 32, generator=g) * 0.5 + 0.5
    conf[0, :4] = 0.
    monkeypatch.setattr(model, 'get_pseudo_labels',
                        lambda *a: (labels.clone(), conf.clone()))
    model.train()
    losses = model.loss(batch['inputs'], batch['data_samples'])
    # recompute the decode-head CE by hand (BN batch statistics as above)
    x = batch['inputs']['unsup_strong']
    logits = model.student.decode_head(model.student.extract_feat(x))
    logits = F.interpolate(logits, size=(32, 32), mode='bilinear',
                           align_corners=False)
    ce = F.cross_entropy(logits, labels, ignore_index=255, reduction='none')
    valid = labels != 255
    if weighting == 'ratio':
        eta = ((conf >= 0.97).flatten(1).sum(1).float() /
               valid.flatten(1).sum(1).float())
        expected = (ce * eta[:, None, None]).sum() / valid.sum()
        assert torch.allclose(losses['unsup.pseudo_conf_ratio'], eta.mean())
    else:
        keep = valid & (conf >= 0.7)
        if weighting == 'class_balanced':  # + each class's top 20 %
            for c in range(NUM_CLASSES):
                sel = valid & (labels == c)
                k = math.ceil(0.2 * int(sel.sum()))
                top = conf[sel].topk(k).values.min()
                keep |= sel & (conf >= top)
        expected = ce[keep].sum() / keep.sum()
    assert torch.allclose(losses['unsup.decode.loss_ce'], expected,
                          rtol=1e-4, atol=1e-6)
    assert 'sup.decode.loss_ce' not in losses


def test_unsup_weight_scales_losses_only():
    model = _build(reco=False, unsup_weight=0.5, mix_mode='none')
    data = make_batch()
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    model.train()
    torch.manual_seed(0)
    half = model.loss(batch['inputs'], batch['data_samples'])
    model.semi_train_cfg['unsup_weight'] = 1.0
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    torch.manual_seed(0)
    full = model.loss(batch['inputs'], batch['data_samples'])
    assert torch.allclose(half['unsup.decode.loss_ce'] * 2,
                          full['unsup.decode.loss_ce'], rtol=1e-4)
    assert torch.allclose(half['unsup.decode.acc_seg'],
                          full['unsup.decode.acc_seg'])


def _predict(model, seed=3):
    data = make_batch(n_lab=2, n_unl=0, seed=seed)
    return torch.stack([
        d.seg_logits.data for d in model.test_step(data)])


def test_predict_on_switches_branch():
    model = _build()
    _perturb_student(model)
    model.eval()
    teacher = _predict(model)
    model.semi_test_cfg['predict_on'] = 'student'
    student = _predict(model)
    assert not torch.allclose(teacher, student)
    plain = MODELS.build(tiny_segmentor_cfg(reco=True))
    plain.load_state_dict(model.student.state_dict())
    plain.eval()
    assert torch.allclose(student, _predict(plain), atol=1e-6)


def test_checkpoint_loads_into_plain_config_and_resumes(tmp_path):
    model = _build()
    _perturb_student(model)
    sd = model.state_dict()
    assert any(k.startswith('student.') for k in sd)
    assert not any(k.startswith('teacher.') for k in sd)
    assert 'decode_head.conv_seg.weight' in sd  # the teacher, plain keys
    ckpt = str(tmp_path / 'semi.pth')
    save_checkpoint(dict(state_dict=sd, meta=dict()), ckpt)
    model.eval()
    expected = _predict(model)  # the teacher

    for reco in (True, False):  # ReCo and the stock head config
        plain = MODELS.build(tiny_segmentor_cfg(reco=reco))
        load_checkpoint(plain, ckpt, map_location='cpu')
        plain.eval()
        assert torch.allclose(_predict(plain), expected, atol=1e-6)

    other = _build()
    load_checkpoint(other, ckpt, map_location='cpu', strict=True)
    for a, b in zip(other.state_dict().values(), sd.values()):
        assert torch.equal(a, b)
    for a, b in zip(other.student.parameters(), model.student.parameters()):
        assert torch.equal(a, b)


def test_plain_checkpoint_initialises_student_and_teacher(tmp_path):
    torch.manual_seed(1)
    plain = MODELS.build(tiny_segmentor_cfg(reco=True))
    quiet_init(plain)
    ckpt = str(tmp_path / 'plain.pth')
    save_checkpoint(dict(state_dict=plain.state_dict()), ckpt)
    model = _build()
    load_checkpoint(model, ckpt, map_location='cpu', strict=True)
    ref = plain.state_dict()
    for branch in (model.student, model.teacher):
        for k, v in branch.state_dict().items():
            assert torch.equal(v, ref[k]), k
    # the same through init_cfg=Pretrained
    cfg = semi_cfg()
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint=ckpt)
    m2 = MODELS.build(cfg)
    quiet_init(m2)
    for k, v in m2.teacher.state_dict().items():
        assert torch.equal(v, ref[k]), k
    for k, v in m2.student.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_bad_config_errors():
    with pytest.raises(KeyError, match='unknown semi_train_cfg'):
        MODELS.build(semi_cfg(pseudo_thr=0.9))
    with pytest.raises(ValueError, match='unsup_weighting'):
        MODELS.build(semi_cfg(unsup_weighting='soft'))
    with pytest.raises(ValueError, match='class_portion'):
        MODELS.build(semi_cfg(class_portion=0.))
    with pytest.raises(ValueError, match='mixing mode'):
        MODELS.build(semi_cfg(mix_mode='mixup'))
    cfg = semi_cfg()
    cfg['semi_test_cfg'] = dict(predict_on='ema')
    with pytest.raises(ValueError, match='predict_on'):
        MODELS.build(cfg)


def test_semi2plain_converter(tmp_path):
    from helpers.tool_loading import load_tool
    tool = load_tool('model_converters/semi2plain.py')
    model = _build()
    _perturb_student(model)
    src, dst = str(tmp_path / 'semi.pth'), str(tmp_path / 'student.pth')
    save_checkpoint(dict(state_dict=model.state_dict(), meta=dict()), src)
    tool.main([src, dst, '--branch', 'student'])
    plain = MODELS.build(tiny_segmentor_cfg(reco=True))
    load_checkpoint(plain, dst, map_location='cpu', strict=True)
    for k, v in model.student.state_dict().items():
        assert torch.equal(plain.state_dict()[k], v), k
    teacher = tool.semi_to_plain(model.state_dict(), 'teacher')
    assert set(teacher) == set(model.teacher.state_dict())
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(teacher[k], v), k
    with pytest.raises(ValueError, match='not a SemiSegmentor'):
        tool.semi_to_plain(model.teacher.state_dict())


def test_plain_data_preprocessor_is_upgraded():
    """mmengine's Runner injects the config's plain SegDataPreProcessor."""
    cfg = semi_cfg()
    cfg['data_preprocessor'] = dict(type='SegDataPreProcessor', size=(32, 32))
    model = MODELS.build(cfg)
    assert type(model.data_preprocessor).__name__ == 'SemiDataPreProcessor'
    out = model.data_preprocessor(make_batch(), True)
    assert out['inputs']['sup'].shape[0] == 2


@pytest.mark.parametrize('device', DEVICES)
def test_class_balanced_mask_matches_loop(device):
    """CBST selection: per pseudo-class the ceil(p * n_c) most confident
    pixels (ties impossible with random confidences), plus conf >= t;
    ignore pixels never kept; a class absent from the batch is fine."""
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (3, 9, 7), generator=g)  # class 4 absent
    labels[0, :2] = 255
    conf = torch.rand(3, 9, 7, generator=g)
    labels, conf = labels.to(device), conf.to(device)
    keep = class_balanced_mask(labels, conf, 0.3, 0.9, 255, 5)
    want = (labels != 255) & (conf >= 0.9)
    for c in range(5):
        sel = labels == c
        n = int(sel.sum())
        if n:
            k = math.ceil(0.3 * n)
            want |= sel & (conf >= conf[sel].topk(k).values.min())
    assert torch.equal(keep, want)
    assert not keep[0, :2].any()
    # portion 1 keeps every valid pixel
    assert torch.equal(class_balanced_mask(labels, conf, 1.0, 0.9, 255, 5),
                       labels != 255)
