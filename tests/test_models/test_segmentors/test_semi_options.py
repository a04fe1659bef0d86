"""SemiSegmentor options: the concatenated (shared-BN) student forward and
ReCo's augmentation of the pseudo-labelled batch."""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS

from helpers.semi_helpers import NUM_CLASSES, make_batch, quiet_init, semi_cfg

REF_AUG = dict(scale=(0.5, 1.5), blur_prob=0.5, blur_sigma=(0.15, 1.15),
               flip_prob=0.5)


def _build(reco=True, **train_cfg):
    torch.manual_seed(0)
    return quiet_init(MODELS.build(semi_cfg(reco, **train_cfg)))


def _losses(model, data, seed=0):
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    torch.manual_seed(seed)
    return model.loss(batch['inputs'], batch['data_samples'])


@pytest.mark.parametrize('reco', [False, True])
@pytest.mark.parametrize('aug', [None, REF_AUG])
def test_concat_forward_equals_separate_in_eval_mode(reco, aug):
    """With BN in eval mode (no batch statistics) one forward of
    cat(labelled, unlabelled) gives exactly the two forwards' losses."""
    model = _build(reco=reco, unsup_aug=aug)
    with torch.no_grad():  # a student that differs from the teacher
        for p in model.student.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    data = make_batch(n_lab=2, n_unl=3)
    sep = _losses(model, data)
    model.semi_train_cfg['concat_forward'] = True
    cat = _losses(model, data)
    assert set(sep) == set(cat)
    for key in ('sup.decode.loss_ce', 'sup.aux.loss_ce',
                'unsup.decode.loss_ce', 'unsup.aux.loss_ce'):
        assert key in cat
    if reco:
        assert cat['reco.loss_reco'] > 0
    for k in sep:
        assert torch.allclose(sep[k], cat[k], rtol=1e-5, atol=1e-6), k
    # the heads are restored (no per-instance override left behind)
    for h in (model.student.decode_head, model.student.auxiliary_head):
        assert 'loss_by_feat' not in h.__dict__


def test_concat_forward_shares_bn_statistics_in_train_mode():
    model = _build(reco=True, concat_forward=True)
    model.train()
    data = make_batch(n_lab=2, n_unl=2)
    bn = model.student.backbone.stem[1]
    calls = []
    handle = bn.register_forward_hook(
        lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        cat = _losses(model, data)
    finally:
        handle.remove()
    assert calls == [4]  # one student forward of 2 + 2 images
    model2 = _build(reco=True)
    model2.train()
    sep = _losses(model2, data)
    # batch statistics differ: the losses are not the same numbers
    assert not torch.allclose(cat['sup.decode.loss_ce'],
                              sep['sup.decode.loss_ce'])
    ow = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    out = model.train_step(make_batch(), ow)
    assert torch.isfinite(out['loss'])


def test_concat_forward_falls_back_and_checks_sizes():
    model = _build(reco=False, concat_forward=True)
    model.eval()
    only_sup = _losses(model, make_batch(n_lab=2, n_unl=0))
    assert 'sup.decode.loss_ce' in only_sup
    assert not any(k.startswith('unsup.') for k in only_sup)
    bad = _build(reco=False, concat_forward=True,
                 unsup_aug=dict(crop_size=(24, 24)))
    with pytest.raises(ValueError, match='same size'):
        _losses(bad, make_batch())
    with pytest.raises(TypeError, match='concat_forward'):
        _build(reco=False, concat_forward='yes')


def test_unsup_aug_keeps_image_label_conf_aligned(monkeypatch):
    """The augmented batch is geometrically consistent: a pseudo-label that
    is a function of the image stays that function after rescale, crop,
    mixing and flip; padded pixels are ignore with confidence 0."""
    model = _build(reco=False, mix_mode='classmix', unsup_aug=dict(
        scale=(0.5, 1.0), flip_prob=0.5))
    model.eval()
    B, H, W = 4, 32, 32
    # class = column band, image = class value (constant per band)
    cls = (torch.arange(W) * NUM_CLASSES // W).expand(B, H, W).clone()
    cls[1] = cls[1].flip(-1)
    img = cls[:, None].float().repeat(1, 3, 1, 1) * 10.
    conf = (cls.float() + 1) / 10.

    monkeypatch.setattr(model, 'get_pseudo_labels',
                        lambda *a: (cls.clone(), conf.clone()))
    torch.manual_seed(3)
    un = model.unsup_batch(img, img.clone(), None)
    lab, c, x = un['labels'], un['conf'], un['img']
    pad = lab == model.ignore_index
    assert pad.any() and (~pad).any()  # scale < 1 always pads
    assert bool((c[pad] == 0).all())
    ok = ~pad
    # nearest-sampled label and bilinear image agree away from band edges
    v = x[:, 0] / 10.
    interior = ok & ((v - v.round()).abs() < 1e-4)
    assert interior.sum() > 0.5 * ok.sum()
    assert torch.equal(v[interior].round(), lab[interior].float())
    assert torch.allclose(c[ok], (lab[ok].float() + 1) / 10.)


def test_unsup_aug_config_errors():
    with pytest.raises(KeyError, match='unsup_aug'):
        _build(reco=False, unsup_aug=dict(rescale=(0.5, 1.5)))
    with pytest.raises(ValueError, match='flip_prob'):
        _build(reco=False, unsup_aug=dict(flip_prob=2.))
    assert _build(reco=False).unsup_aug is None  # off by default


def test_train_step_with_reference_augmentation():
    model = _build(reco=True, unsup_aug=REF_AUG)
    model.train()
    ow = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    torch.manual_seed(0)
    out = model.train_step(make_batch(), ow)
    assert torch.isfinite(out['loss'])
    assert 'unsup.decode.loss_ce' in out and 'reco.loss_reco' in out
