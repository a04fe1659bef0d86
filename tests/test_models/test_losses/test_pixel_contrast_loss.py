"""PixelContrastLoss: closed forms, sampling invariants, edge cases, memory
mode and hard key mining."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_contrast.models.losses import PixelContrastLoss
from mmseg_contrast.models.losses.pixel_contrast_loss import (
    in_batch_contrast,
    memory_contrast,
    sample_anchors,
    select_keys,
)
from mmseg_contrast.models.utils import PixelMemoryBank

TAU, TAU_B = 0.1, 0.07


def _build(**kw):
    cfg = dict(type='PixelContrastLoss', temperature=TAU,
               base_temperature=TAU_B, max_samples=1024, max_views=100,
               ignore_index=255, loss_weight=1.0, loss_name='loss_contrast')
    cfg.update(kw)
    return MODELS.build(cfg)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _unit(*shape, seed=0, dim=1):
    return F.normalize(torch.randn(*shape, generator=_gen(seed)), dim=dim)


def _closed_form(feats, labels, tau=TAU, tau_b=TAU_B):
    """Independent double-loop closed form (float64) of the paper's loss on
    views feats (N, D) with labels (N,): mean over views with a positive."""
    f = feats.double()
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


def _mem_closed_form(anchors, labels, entries, entry_labels, tau=TAU,
                     tau_b=TAU_B, pos_sets=None, neg_sets=None):
    """Anchors vs a list of bank entries; optional explicit key sets."""
    a, e = anchors.double(), entries.double()
    total, rows = 0.0, 0
    for i in range(a.shape[0]):
        pos = (pos_sets[i] if pos_sets is not None else
               [j for j in range(e.shape[0]) if entry_labels[j] == labels[i]])
        neg = (neg_sets[i] if neg_sets is not None else
               [j for j in range(e.shape[0]) if entry_labels[j] != labels[i]])
        if not pos:
            continue
        negsum = sum(math.exp(float(a[i] @ e[k]) / tau) for k in neg)
        acc = sum(
            math.log(math.exp(float(a[i] @ e[p]) / tau) /
                     (math.exp(float(a[i] @ e[p]) / tau) + negsum))
            for p in pos)
        total += -(tau / tau_b) * acc / len(pos)
        rows += 1
    return total / rows if rows else 0.0


def _blocks_labels(B=2, h=8, w=8, seed=0):
    """Per image 2-3 rectangular classes + a few ignore pixels."""
    lab = torch.zeros(B, h, w, dtype=torch.long)
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
def test_in_batch_loss_matches_closed_form_on_drawn_samples():
    """The full forward equals the independent closed form on the views it
    sampled (same generator seed)."""
    B, D, h, w = 2, 8, 8, 8
    e = _unit(B, D, h, w, seed=1)
    lab = _blocks_labels(B, h, w)
    pred = torch.randint(0, 3, (B, h, w), generator=_gen(2))
    loss = _build(max_samples=30, max_views=6)
    s = sample_anchors(e, lab, pred, 30, 6, 255, generator=_gen(7))
    assert s.num_rows == 5 and s.n_view == 6  # min(30 // 5, 6)
    value = loss(e, lab, pred, generator=_gen(7))
    T, V, _ = s.feats.shape
    views = s.feats.reshape(T * V, D)
    labels = s.labels.repeat_interleave(V).tolist()
    assert value.item() == pytest.approx(_closed_form(views, labels),
                                         rel=1e-5)


def test_in_batch_loss_closed_form_independent_of_sampling():
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
    value = loss(e, full, pred)
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


@pytest.mark.parametrize('max_samples,max_views', [(64, 10), (40, 7),
                                                    (1024, 3)])
def test_sampling_invariants(max_samples, max_views):
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
    s = sample_anchors(e, lab, pred, max_samples, max_views, 255,
                       generator=_gen(13))
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


def test_row_threshold_is_strictly_greater_than_max_views():
    lab = torch.zeros(1, 4, 5, dtype=torch.long)  # class 0: 12, class 1: 8
    lab[0, :, 3:] = 1
    e = _unit(1, 4, 4, 5)
    s = sample_anchors(e, lab, lab, 64, 8, 255)
    assert s.labels.tolist() == [0]  # exactly max_views pixels: no row
    s = sample_anchors(e, lab, lab, 64, 7, 255)
    assert s.labels.tolist() == [0, 1]


def test_sampling_is_random_but_seeded():
    B, D, h, w = 1, 4, 16, 16
    lab = torch.zeros(B, h, w, dtype=torch.long)
    lab[:, 8:] = 1
    pred = lab.clone()
    e = _unit(B, D, h, w)
    a = sample_anchors(e, lab, pred, 20, 10, 255, generator=_gen(1))
    b = sample_anchors(e, lab, pred, 20, 10, 255, generator=_gen(1))
    c = sample_anchors(e, lab, pred, 20, 10, 255, generator=_gen(2))
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


def test_no_anchors_gives_connected_zero():
    e = _unit(2, 4, 4, 4).requires_grad_()
    lab = torch.zeros(2, 4, 4, dtype=torch.long)  # 16 px per class <= 100
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


def test_gradient_flows_only_to_sampled_pixels():
    B, D, h, w = 2, 8, 8, 8
    e = _unit(B, D, h, w, seed=4).requires_grad_()
    lab = _blocks_labels(B, h, w)
    pred = torch.randint(0, 3, (B, h, w), generator=_gen(5))
    loss = _build(max_samples=16, max_views=4)
    loss(e, lab, pred, generator=_gen(3)).backward()
    s = sample_anchors(e.detach(), lab, pred, 16, 4, 255, generator=_gen(3))
    touched = torch.zeros(B, h * w, dtype=torch.bool)
    touched[s.batch_idx[:, None].expand_as(s.pixel_idx), s.pixel_idx] = True
    grad_nz = e.grad.flatten(2).abs().sum(1) > 0
    assert torch.equal(grad_nz, touched)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_low_precision_is_finite_and_close(dtype):
    B, D, h, w = 2, 16, 8, 8
    e32 = _unit(B, D, h, w, seed=6)
    lab = _blocks_labels(B, h, w)
    pred = torch.randint(0, 3, (B, h, w), generator=_gen(8))
    loss = _build(max_samples=24, max_views=6)
    ref = loss(e32, lab, pred, generator=_gen(9))
    e = e32.to(dtype).requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        value = loss(e, lab, pred, generator=_gen(9))
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


def test_in_batch_contrast_no_positive_rows_left_out():
    # 3 rows, V=1: class 0 twice (positives of each other), class 1 once
    f = _unit(3, 1, 6, seed=5, dim=-1)
    lab = torch.tensor([0, 0, 1])
    got = in_batch_contrast(f, lab, TAU, TAU_B)
    exp = _closed_form(f[:, 0], lab.tolist())
    assert got.item() == pytest.approx(exp, rel=1e-5)


# --------------------------------------------------------------- memory mode
def _filled_bank(C=3, D=8, M=6):
    bank = PixelMemoryBank(num_classes=C, feat_dim=D, memory_size=M,
                           pixel_per_image=2, seed=1)
    keys = _unit(2, D, 4, 4, seed=21)
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    labels[0, :, 2:] = 1
    labels[1, :, :] = 2
    labels[1, 0] = 1
    bank.enqueue(keys, labels)
    bank.enqueue(_unit(2, D, 4, 4, seed=22), labels.flip(0))
    return bank


def _bank_entries(bank):
    ents, labs = [], []
    for q, m in bank.queues():
        for c in range(q.shape[0]):
            for j in range(q.shape[1]):
                if m[c, j]:
                    ents.append(q[c, j])
                    labs.append(c)
    return torch.stack(ents), labs


def test_memory_mode_all_matches_closed_form_and_ignores_unfilled():
    bank = _filled_bank()
    assert not bank.pixel_filled.all()  # some slots unfilled
    ents, elabs = _bank_entries(bank)
    a = _unit(7, 8, seed=30, dim=-1)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    got = memory_contrast(a, y, bank, TAU, TAU_B)
    assert got.item() == pytest.approx(
        _mem_closed_form(a, y.tolist(), ents, elabs), rel=1e-5)
    # a plain (C, M, D) tensor: every slot is a key, class 0 included
    q = _unit(3, 4, 8, seed=31, dim=-1)
    got = memory_contrast(a, y, q, TAU, TAU_B)
    qe = q.reshape(-1, 8)
    ql = [c for c in range(3) for _ in range(4)]
    assert got.item() == pytest.approx(_mem_closed_form(a, y.tolist(), qe,
                                                        ql), rel=1e-5)


def test_memory_mode_forward_uses_bank_and_alias():
    bank = _filled_bank()
    e = _unit(2, 8, 8, 8, seed=32).requires_grad_()
    lab = _blocks_labels(2, 8, 8)
    loss = _build(max_views=1, max_samples=1024)
    v1 = loss(e, lab, lab, queue=bank, generator=_gen(4))
    v2 = loss(e, lab, lab, memory_bank=bank, generator=_gen(4))
    assert v1.item() == v2.item() != 0
    s = sample_anchors(e.detach(), lab, lab, 1024, 1, 255, generator=_gen(4))
    ents, elabs = _bank_entries(bank)
    exp = _mem_closed_form(s.feats[:, 0], s.labels.tolist(), ents, elabs)
    assert v1.item() == pytest.approx(exp, rel=1e-5)
    v1.backward()
    assert e.grad.abs().sum() > 0
    assert not bank.pixel_queue.requires_grad
    with pytest.raises(ValueError, match='not both'):
        loss(e, lab, lab, queue=bank, memory_bank=bank)


def test_memory_mode_empty_bank_gives_connected_zero():
    bank = PixelMemoryBank(num_classes=3, feat_dim=4, memory_size=8,
                           pixel_per_image=2)
    e = _unit(2, 4, 8, 8).requires_grad_()
    lab = _blocks_labels(2, 8, 8)
    for mode in ('all', 'hardest', 'semi_hard'):
        e.grad = None
        value = _build(max_views=2, key_sampling=mode, num_keys=3)(
            e, lab, lab, queue=bank)
        _assert_connected_zero(value, e)


def _explicit_hardest_sets(a, y, ents, elabs, k_neg, k_pos):
    sims = (a.double() @ ents.double().t())
    pos_sets, neg_sets = [], []
    for i in range(a.shape[0]):
        pos = [j for j in range(len(elabs)) if elabs[j] == int(y[i])]
        neg = [j for j in range(len(elabs)) if elabs[j] != int(y[i])]
        pos = sorted(pos, key=lambda j: float(sims[i, j]))[:k_pos]
        neg = sorted(neg, key=lambda j: -float(sims[i, j]))[:k_neg]
        pos_sets.append(pos)
        neg_sets.append(neg)
    return pos_sets, neg_sets


def test_memory_mode_hardest_matches_closed_form():
    bank = _filled_bank()
    ents, elabs = _bank_entries(bank)
    a = _unit(7, 8, seed=33, dim=-1)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    got = memory_contrast(a, y, bank, TAU, TAU_B, 'hardest', num_keys=3,
                          num_pos_keys=2)
    ps, ns = _explicit_hardest_sets(a, y, ents, elabs, 3, 2)
    exp = _mem_closed_form(a, y.tolist(), ents, elabs, pos_sets=ps,
                           neg_sets=ns)
    assert got.item() == pytest.approx(exp, rel=1e-5)
    # and it differs from using all keys
    assert got.item() != pytest.approx(
        memory_contrast(a, y, bank, TAU, TAU_B).item(), rel=1e-3)


def test_memory_mode_semi_hard_equals_hardest_when_pool_is_k():
    """10 % of the keys is fewer than K, so the pool is the K hardest and
    all K are drawn: semi-hard must then equal hardest."""
    bank = _filled_bank()
    a = _unit(7, 8, seed=34, dim=-1)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    h = memory_contrast(a, y, bank, TAU, TAU_B, 'hardest', num_keys=3,
                        num_pos_keys=2)
    s = memory_contrast(a, y, bank, TAU, TAU_B, 'semi_hard', num_keys=3,
                        num_pos_keys=2, generator=_gen(0))
    assert s.item() == pytest.approx(h.item(), rel=1e-6)


def test_select_keys_semi_hard_draws_within_top_fraction():
    n, k_all, k = 5, 200, 4
    logits = torch.randn(n, k_all, generator=_gen(40))
    valid = torch.ones(n, k_all, dtype=torch.bool)
    valid[:, 150:] = False  # 150 valid -> pool = ceil(15) = 15
    vals, keep = select_keys(logits, valid, k, 'semi_hard',
                             hardest_high=True, ratio=0.1,
                             generator=_gen(41))
    assert vals.shape == (n, k) and keep.all()
    top15 = logits[:, :150].topk(15, dim=1).values
    for r in range(n):
        got = set(vals[r].tolist())
        assert len(got) == k and got <= set(top15[r].tolist())
    # different draws on different seeds
    vals2, _ = select_keys(logits, valid, k, 'semi_hard', True, 0.1,
                           generator=_gen(42))
    assert not torch.equal(vals.sort(1).values, vals2.sort(1).values)
    # positives: least similar
    pv, pk = select_keys(logits, valid, k, 'hardest', hardest_high=False)
    exp = logits[:, :150].topk(k, dim=1, largest=False).values
    torch.testing.assert_close(pv, exp)
    assert pk.all()


def test_memory_mode_semi_hard_forward_is_finite_with_grad():
    bank = _filled_bank()
    e = _unit(2, 8, 8, 8, seed=35).requires_grad_()
    lab = _blocks_labels(2, 8, 8)
    loss = _build(max_views=4, key_sampling='semi_hard', num_keys=2,
                  semi_hard_ratio=0.5)
    value = loss(e, lab, lab, queue=bank)
    assert torch.isfinite(value) and value.item() > 0
    value.backward()
    assert e.grad.abs().sum() > 0
