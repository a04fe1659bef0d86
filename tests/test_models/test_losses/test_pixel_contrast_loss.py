"""PixelContrastLoss: closed forms, sampling invariants and edge cases of
the in-batch loss (memory mode and key mining: test_pixel_contrast_memory.py,
which imports the helpers of this module)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_contrast.models.losses import PixelContrastLoss
from mmseg_contrast.models.losses.pixel_contrast_loss import (
    in_batch_contrast,
    sample_anchors,
)

from helpers.devices import DEVICES

TAU, TAU_B = 0.1, 0.07


def _build(**kw):
    cfg = dict(type='PixelContrastLoss', temperature=TAU,
               base_temperature=TAU_B, max_samples=1024, max_views=100,
               ignore_index=255, loss_weight=1.0, loss_name='loss_contrast')
    cfg.update(kw)
    return MODELS.build(cfg)


def _gen(seed=0, device='cpu'):
    return torch.Generator(device=device).manual_seed(seed)


def _unit(*shape, seed=0, dim=1, device='cpu'):
    """The same unit vectors on every device (drawn on the CPU)."""
    return F.normalize(torch.randn(*shape, generator=_gen(seed)),
                       dim=dim).to(device)


def _closed_form(feats, labels, tau=TAU, tau_b=TAU_B):
    """Independent double-loop closed form (float64) of the paper's loss on
    views feats (N, D) with labels (N,): mean over views with a positive."""
    f = feats.detach().double().cpu()
    n = f.shape[0]
    total, rows = 0.0, 0
    for i in range(n):
        pos = [p for p in range(n) if p != i and labels[p] == labels[i]]
        neg = [k for k in range(n) if labels[k] != labels[i]]
        if not pos:
            continue
        negsum = sum(math.exp(float(f[i] @ f[k]) / tau) for k in neg)
        acc = 0.0
        for p in pos:
            e = math.exp(float(f[i] @ f[p]) / tau)
            acc += math.log(e / (e + negsum))
        total += -(tau / tau_b) * acc / len(pos)
        rows += 1
    return total / rows if rows else 0.0


def _blocks_labels(B=2, h=8, w=8, seed=0, device='cpu'):
    """Per image 2-3 rectangular classes + a few ignore pixels."""
    lab = torch.zeros(B, h, w, dtype=torch.long, device=device)
    lab[0, :, w // 2:] = 1
    lab[0, :2, :2] = 255
    if B > 1:
        lab[1, :h // 2] = 1
        lab[1, h // 2:, :w // 2] = 2
    return lab


# --------------------------------------------------------------- interface
def test_build_interface_and_loss_name():
    loss = _build()
    assert isinstance(loss, PixelContrastLoss)
    assert loss.loss_name == 'loss_contrast'
    assert _build(loss_name='loss_pc').loss_name == 'loss_pc'
    with pytest.raises(ValueError, match='key_sampling'):
        _build(key_sampling='random')
    with pytest.raises(ValueError, match='temperature'):
        _build(temperature=0)


def test_bad_inputs_give_clear_errors():
    loss = _build(max_views=2)
    e = _unit(2, 4, 4, 4)
    lab = torch.zeros(2, 8, 8, dtype=torch.long)
    with pytest.raises(ValueError, match='seg_pred must be'):
        loss(e, lab, torch.zeros(2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match='integer'):
        loss(e, lab.float(), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='seg_label must be'):
        loss(e, lab[:1], torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='embed must be'):
        loss(e[0], lab, torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match='queue must be'):
        loss(e, lab, torch.zeros(2, 4, 4, dtype=torch.long), queue='bank')


# --------------------------------------------------------------- closed form
@pytest.mark.parametrize('device', DEVICES)
def test_in_batch_loss_matches_closed_form_on_drawn_samples(device):
    """The full forward equals the independent closed form on the views it
    sampled (same generator seed)."""
    B, D, h, w = 2, 8, 8, 8
    e = _unit(B, D, h, w, seed=1, device=device)
    lab = _blocks_labels(B, h, w, device=device)
    pred = torch.randint(0, 3, (B, h, w), generator=_gen(2)).to(device)
    loss = _build(max_samples=30, max_views=6)
    s = sample_anchors(e, lab, pred, 30, 6, 255,
                       generator=_gen(7, device))
    assert s.num_rows == 5 and s.n_view == 6  # min(30 // 5, 6)
    value = loss(e, lab, pred, generator=_gen(7, device))
    T, V, _ = s.feats.shape
    views = s.feats.reshape(T * V, D)
    labels = s.labels.repeat_interleave(V).tolist()
    assert value.item() == pytest.approx(_closed_form(views, labels),
                                         rel=1e-5)


@pytest.mark.parametrize('device', DEVICES)
def test_in_batch_loss_closed_form_independent_of_sampling(device):
    """Embeddings constant per (image, class) make the loss independent of
    which pixels are drawn, so the whole pipeline (label downsampling, row
    selection, n_view) is checked against a closed form built from scratch."""
    B, D, h, w, C = 2, 16, 6, 8, 4
    lab_small = torch.tensor([[0] * 24 + [1] * 12 + [2] * 12,
                              [1] * 30 + [3] * 18]).view(B, h, w)
    lab_small[0, 0, :3] = 255  # 21 valid class-0 pixels
    full = lab_small.repeat_interleave(2, 1).repeat_interleave(2, 2)
    full[:, 1::2] = 7  # odd rows are never picked by legacy 'nearest'
    proto = _unit(B, C, D, seed=3, dim=-1)
    e = proto[torch.arange(B)[:, None, None], lab_small.clamp(max=C - 1)]
    e = e.permute(0, 3, 1, 2).contiguous()
    pred = torch.zeros(B, h, w, dtype=torch.long)
    loss = _build(max_samples=20, max_views=15)
    value = loss(e.to(device), full.to(device), pred.to(device))
    # rows: counts (0:21, 1:12, 2:12 | 1:30, 3:18) > 15 -> (0,0),(1,1),(1,3)
    rows = [(0, 0), (1, 1), (1, 3)]
    assert loss.last_num_rows == 3
    V = min(20 // 3, 15)
    assert loss.last_n_view == V
    views = torch.cat([proto[b, c][None].expand(V, D) for b, c in rows])
    labels = [c for _, c in rows for _ in range(V)]
    assert value.item() == pytest.approx(_closed_form(views, labels),
                                         rel=1e-4)


# --------------------------------------------------------------- sampling
def _reference_keep(h_cnt, e_cnt, V):
    if h_cnt >= V / 2 and e_cnt >= V / 2:
        hk = V // 2
        return hk, V - hk
    if h_cnt >= V / 2:
        return V - e_cnt, e_cnt
    return h_cnt, V - h_cnt


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('max_samples,max_views', [(64, 10), (40, 7),
                                                    (1024, 3)])
def test_sampling_invariants(max_samples, max_views, device):
    B, D, h, w, C = 3, 4, 10, 12, 5
    g = _gen(11)
    lab = torch.randint(0, C, (B, h, w), generator=g)
    lab[0, :3] = 255
    lab[2] = torch.where(lab[2] == 4, 3, lab[2])  # class 4 absent in img 2
    # predictions: mostly right for some classes, mostly wrong for others
    wrong = torch.randint(0, C, (B, h, w), generator=g)
    p_right = torch.tensor([0.95, 0.5, 0.05, 0.7, 0.3])[lab.clamp(max=C - 1)]
    pred = torch.where(torch.rand(B, h, w, generator=g) < p_right, lab, wrong)
    pred = torch.where(lab == 255, wrong, pred)
    e = _unit(B, D, h, w, seed=12)
    s = sample_anchors(e.to(device), lab.to(device), pred.to(device),
                       max_samples, max_views, 255,
                       generator=_gen(13, device))
    s = s._replace(**{k: getattr(s, k).cpu() for k in (
        'feats', 'labels', 'batch_idx', 'pixel_idx', 'num_hard')})
    # rows: every (image, class) with > max_views valid pixels, (b, c) order
    expected_rows = [(b, c) for b in range(B) for c in range(C)
                     if int((lab[b] == c).sum()) > max_views]
    assert [(int(b), int(c)) for b, c in zip(s.batch_idx, s.labels)
            ] == expected_rows
    T = len(expected_rows)
    V = min(max_samples // T, max_views)
    assert s.n_view == V and s.feats.shape == (T, V, D)
    flat_lab, flat_pred = lab.view(B, -1), pred.view(B, -1)
    for r, (b, c) in enumerate(expected_rows):
        idx = s.pixel_idx[r]
        assert len(set(idx.tolist())) == V  # without replacement
        assert (flat_lab[b, idx] == c).all()  # all of the row's class
        hard = flat_pred[b, idx] != c
        n_h = int(((flat_lab[b] == c) & (flat_pred[b] != c)).sum())
        n_e = int(((flat_lab[b] == c) & (flat_pred[b] == c)).sum())
        hk, ek = _reference_keep(n_h, n_e, V)
        assert int(s.num_hard[r]) == hk
        assert hard[:hk].all() and not hard[hk:].any()  # hard first
        assert int((~hard).sum()) == ek
        torch.testing.assert_close(s.feats[r],
                                   e[b].flatten(1)[:, idx].t())


@pytest.mark.parametrize('device', DEVICES)
def test_row_threshold_is_strictly_greater_than_max_views(device):
    lab = torch.zeros(1, 4, 5, dtype=torch.long, device=device)
    lab[0, :, 3:] = 1  # class 0: 12 pixels, class 1: 8
    e = _unit(1, 4, 4, 5, device=device)
    s = sample_anchors(e, lab, lab, 64, 8, 255)
    assert s.labels.tolist() == [0]  # exactly max_views pixels: no row
    s = sample_anchors(e, lab, lab, 64, 7, 255)
    assert s.labels.tolist() == [0, 1]


@pytest.mark.parametrize('device', DEVICES)
def test_sampling_is_random_but_seeded(device):
    B, D, h, w = 1, 4, 16, 16
    lab = torch.zeros(B, h, w, dtype=torch.long, device=device)
    lab[:, 8:] = 1
    pred = lab.clone()
    e = _unit(B, D, h, w, device=device)
    a = sample_anchors(e, lab, pred, 20, 10, 255, generator=_gen(1, device))
    b = sample_anchors(e, lab, pred, 20, 10, 255, generator=_gen(1, device))
    c = sample_anchors(e, lab, pred, 20, 10, 255, generator=_gen(2, device))
    assert torch.equal(a.pixel_idx, b.pixel_idx)
    assert not torch.equal(a.pixel_idx, c.pixel_idx)


def test_full_resolution_labels_use_legacy_nearest():
    """Labels are resized with legacy 'nearest' (label[2i, 2j] here), so the
    odd rows/cols (set to class 9) never produce anchors."""
    B, D, h, w = 1, 4, 8, 8
    small = torch.zeros(B, h, w, dtype=torch.long)
    small[:, :, 4:] = 1
    full = small.repeat_interleave(2, 1).repeat_interleave(2, 2)
    full[:, 1::2] = 9
    full[:, :, 1::2] = 9
    ref = F.interpolate(full[:, None].float(), size=(h, w),
                        mode='nearest')[:, 0].long()
    assert torch.equal(ref, small)
    e = _unit(B, D, h, w)
    pred = torch.zeros(B, h, w, dtype=torch.long)
    loss = _build(max_views=8, max_samples=64)
    loss(e, full, pred)
    assert loss.last_num_rows == 2  # classes 0 and 1, never 9


# --------------------------------------------------------------- edge cases
def _assert_connected_zero(value, e):
    assert torch.isfinite(value) and value.item() == 0.0
    value.backward()
    assert e.grad is not None and torch.count_nonzero(e.grad) == 0


@pytest.mark.parametrize('device', DEVICES)
def test_no_anchors_gives_connected_zero(device):
    e = _unit(2, 4, 4, 4, device=device).requires_grad_()
    lab = torch.zeros(2, 4, 4, dtype=torch.long, device=device)  # 16 px
    _assert_connected_zero(_build()(e, lab, lab.clone()), e)


def test_all_ignore_gives_connected_zero():
    e = _unit(2, 4, 8, 8).requires_grad_()
    lab = torch.full((2, 8, 8), 255, dtype=torch.long)
    _assert_connected_zero(
        _build(max_views=2)(e, lab, torch.zeros_like(lab)), e)


def test_n_view_zero_gives_connected_zero():
    e = _unit(2, 4, 8, 8).requires_grad_()
    lab = _blocks_labels(2, 8, 8)  # 5 rows with max_views=2
    loss = _build(max_views=2, max_samples=4)  # 4 // 5 == 0
    value = loss(e, lab, lab.clone())
    assert loss.last_num_rows == 5 and loss.last_n_view == 0
    _assert_connected_zero(value, e)


def test_single_class_and_single_view_rows():
    # one class in every image: no negatives -> log_prob == 0 -> loss 0
    e = _unit(2, 4, 8, 8).requires_grad_()
    lab = torch.zeros(2, 8, 8, dtype=torch.long)
    value = _build(max_views=5)(e, lab, lab.clone())
    assert value.item() == pytest.approx(0.0, abs=1e-6)
    value.backward()
    assert torch.isfinite(e.grad).all()
    # V == 1 and every class in a single row: no positives at all (the
    # reference divides by zero) -> connected zero, not NaN
    e2 = _unit(1, 4, 8, 8).requires_grad_()
    lab2 = _blocks_labels(1, 8, 8)
    value2 = _build(max_views=1)(e2, lab2, lab2.clone())
    _assert_connected_zero(value2, e2)


@pytest.mark.parametrize('device', DEVICES)
def test_gradient_flows_only_to_sampled_pixels(device):
    B, D, h, w = 2, 8, 8, 8
    e = _unit(B, D, h, w, seed=4, device=device).requires_grad_()
    lab = _blocks_labels(B, h, w, device=device)
    pred = torch.randint(0, 3, (B, h, w), generator=_gen(5)).to(device)
    loss = _build(max_samples=16, max_views=4)
    loss(e, lab, pred, generator=_gen(3, device)).backward()
    s = sample_anchors(e.detach(), lab, pred, 16, 4, 255,
                       generator=_gen(3, device))
    touched = torch.zeros(B, h * w, dtype=torch.bool, device=device)
    touched[s.batch_idx[:, None].expand_as(s.pixel_idx), s.pixel_idx] = True
    grad_nz = e.grad.flatten(2).abs().sum(1) > 0
    assert torch.equal(grad_nz, touched)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_low_precision_is_finite_and_close(dtype, device):
    B, D, h, w = 2, 16, 8, 8
    e32 = _unit(B, D, h, w, seed=6, device=device)
    lab = _blocks_labels(B, h, w, device=device)
    pred = torch.randint(0, 3, (B, h, w), generator=_gen(8)).to(device)
    loss = _build(max_samples=24, max_views=6)
    ref = loss(e32, lab, pred, generator=_gen(9, device))
    e = e32.to(dtype).requires_grad_()
    with torch.autocast(device, dtype=dtype):
        value = loss(e, lab, pred, generator=_gen(9, device))
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(ref.item(), rel=2e-2)
    value.backward()
    assert e.grad is not None and torch.isfinite(e.grad.float()).all()
    assert e.grad.abs().sum() > 0


def test_loss_weight_scales():
    e = _unit(2, 8, 8, 8, seed=2)
    lab = _blocks_labels(2, 8, 8)
    a = _build(max_views=4, max_samples=16)(e, lab, lab, generator=_gen(0))
    b = _build(max_views=4, max_samples=16, loss_weight=0.1)(
        e, lab, lab, generator=_gen(0))
    assert b.item() == pytest.approx(0.1 * a.item(), rel=1e-6)


@pytest.mark.parametrize('device', DEVICES)
def test_in_batch_contrast_no_positive_rows_left_out(device):
    # 3 rows, V=1: class 0 twice (positives of each other), class 1 once
    f = _unit(3, 1, 6, seed=5, dim=-1, device=device)
    lab = torch.tensor([0, 0, 1], device=device)
    got = in_batch_contrast(f, lab, TAU, TAU_B)
    exp = _closed_form(f[:, 0], lab.tolist())
    assert got.device == f.device
    assert got.item() == pytest.approx(exp, rel=1e-5)
