"""PixelContrastLoss memory mode: closed forms against the bank, hard /
semi-hard key mining, and the generator's device check."""
import math
from types import SimpleNamespace

import pytest
import torch
from test_pixel_contrast_loss import (
    TAU,
    TAU_B,
    _assert_connected_zero,
    _blocks_labels,
    _build,
    _gen,
    _unit,
)

from mmseg_contrast.models.losses.pixel_contrast_loss import (
    memory_contrast,
    sample_anchors,
    select_keys,
)
from mmseg_contrast.models.utils import PixelMemoryBank

from helpers.devices import CUDA, DEVICES


def _mem_closed_form(anchors, labels, entries, entry_labels, tau=TAU,
                     tau_b=TAU_B, pos_sets=None, neg_sets=None):
    """Anchors vs a list of bank entries; optional explicit key sets."""
    a, e = anchors.detach().double().cpu(), entries.double().cpu()
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


def _filled_bank(C=3, D=8, M=6, device='cpu'):
    bank = PixelMemoryBank(num_classes=C, feat_dim=D, memory_size=M,
                           pixel_per_image=2, seed=1).to(device)
    keys = _unit(2, D, 4, 4, seed=21, device=device)
    labels = torch.zeros(2, 4, 4, dtype=torch.long, device=device)
    labels[0, :, 2:] = 1
    labels[1, :, :] = 2
    labels[1, 0] = 1
    bank.enqueue(keys, labels)
    bank.enqueue(_unit(2, D, 4, 4, seed=22, device=device), labels.flip(0))
    return bank


def _bank_entries(bank):
    ents, labs = [], []
    for q, m in bank.queues():
        q, m = q.cpu(), m.cpu()
        for c in range(q.shape[0]):
            for j in range(q.shape[1]):
                if m[c, j]:
                    ents.append(q[c, j])
                    labs.append(c)
    return torch.stack(ents), labs


@pytest.mark.parametrize('device', DEVICES)
def test_memory_mode_all_matches_closed_form_and_ignores_unfilled(device):
    bank = _filled_bank(device=device)
    assert not bank.pixel_filled.all()  # some slots unfilled
    ents, elabs = _bank_entries(bank)
    a = _unit(7, 8, seed=30, dim=-1, device=device)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2], device=device)
    got = memory_contrast(a, y, bank, TAU, TAU_B)
    assert got.item() == pytest.approx(
        _mem_closed_form(a, y.tolist(), ents, elabs), rel=1e-5)
    # a plain (C, M, D) tensor: every slot is a key, class 0 included
    q = _unit(3, 4, 8, seed=31, dim=-1, device=device)
    got = memory_contrast(a, y, q, TAU, TAU_B)
    qe = q.reshape(-1, 8)
    ql = [c for c in range(3) for _ in range(4)]
    assert got.item() == pytest.approx(_mem_closed_form(a, y.tolist(), qe,
                                                        ql), rel=1e-5)


@pytest.mark.parametrize('device', DEVICES)
def test_memory_mode_forward_uses_bank_and_alias(device):
    bank = _filled_bank(device=device)
    e = _unit(2, 8, 8, 8, seed=32, device=device).requires_grad_()
    lab = _blocks_labels(2, 8, 8, device=device)
    loss = _build(max_views=1, max_samples=1024)
    v1 = loss(e, lab, lab, queue=bank, generator=_gen(4, device))
    v2 = loss(e, lab, lab, memory_bank=bank, generator=_gen(4, device))
    assert v1.item() == v2.item() != 0
    s = sample_anchors(e.detach(), lab, lab, 1024, 1, 255,
                       generator=_gen(4, device))
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


@pytest.mark.parametrize('device', DEVICES)
def test_memory_mode_hardest_matches_closed_form(device):
    bank = _filled_bank(device=device)
    ents, elabs = _bank_entries(bank)
    a = _unit(7, 8, seed=33, dim=-1, device=device)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2], device=device)
    got = memory_contrast(a, y, bank, TAU, TAU_B, 'hardest', num_keys=3,
                          num_pos_keys=2)
    ps, ns = _explicit_hardest_sets(a.cpu(), y.cpu(), ents, elabs, 3, 2)
    exp = _mem_closed_form(a, y.tolist(), ents, elabs, pos_sets=ps,
                           neg_sets=ns)
    assert got.item() == pytest.approx(exp, rel=1e-5)
    # and it differs from using all keys
    assert got.item() != pytest.approx(
        memory_contrast(a, y, bank, TAU, TAU_B).item(), rel=1e-3)


@pytest.mark.parametrize('device', DEVICES)
def test_memory_mode_semi_hard_equals_hardest_when_pool_is_k(device):
    """10 % of the keys is fewer than K, so the pool is the K hardest and
    all K are drawn: semi-hard must then equal hardest."""
    bank = _filled_bank(device=device)
    a = _unit(7, 8, seed=34, dim=-1, device=device)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2], device=device)
    h = memory_contrast(a, y, bank, TAU, TAU_B, 'hardest', num_keys=3,
                        num_pos_keys=2)
    s = memory_contrast(a, y, bank, TAU, TAU_B, 'semi_hard', num_keys=3,
                        num_pos_keys=2, generator=_gen(0, device))
    assert s.item() == pytest.approx(h.item(), rel=1e-6)


@pytest.mark.parametrize('device', DEVICES)
def test_select_keys_semi_hard_draws_within_top_fraction(device):
    n, k_all, k = 5, 200, 4
    logits = torch.randn(n, k_all, generator=_gen(40)).to(device)
    valid = torch.ones(n, k_all, dtype=torch.bool, device=device)
    valid[:, 150:] = False  # 150 valid -> pool = ceil(15) = 15
    vals, keep = select_keys(logits, valid, k, 'semi_hard',
                             hardest_high=True, ratio=0.1,
                             generator=_gen(41, device))
    assert vals.shape == (n, k) and keep.all()
    top15 = logits[:, :150].topk(15, dim=1).values
    for r in range(n):
        got = set(vals[r].tolist())
        assert len(got) == k and got <= set(top15[r].tolist())
    # different draws on different seeds
    vals2, _ = select_keys(logits, valid, k, 'semi_hard', True, 0.1,
                           generator=_gen(42, device))
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


# ------------------------------------------------------- generator device
def test_generator_on_another_device_is_one_clear_error():
    """(a stand-in: a CUDA generator cannot be made without a GPU)"""
    cuda_gen = SimpleNamespace(device=torch.device('cuda'))
    e = _unit(2, 8, 8, 8)
    lab = _blocks_labels(2, 8, 8)
    with pytest.raises(ValueError, match='generator is on cuda'):
        sample_anchors(e, lab, lab, 16, 4, 255, generator=cuda_gen)
    with pytest.raises(ValueError, match='generator is on cuda'):
        memory_contrast(_unit(4, 8, dim=-1), torch.zeros(4).long(),
                        _unit(2, 3, 8, dim=-1), TAU, TAU_B,
                        generator=cuda_gen)
    with pytest.raises(ValueError, match='generator is on cuda'):
        select_keys(torch.zeros(2, 5), torch.ones(2, 5).bool(), 2,
                    'semi_hard', True, generator=cuda_gen)


@pytest.mark.parametrize('device', [CUDA])
@pytest.mark.parametrize('key_sampling', [None, 'all', 'semi_hard'])
def test_cpu_generator_with_cuda_tensors_is_one_clear_error(key_sampling,
                                                           device):
    e = _unit(2, 8, 8, 8, device=device)
    lab = _blocks_labels(2, 8, 8, device=device)
    bank = None if key_sampling is None else _filled_bank(device=device)
    loss = _build(max_views=4, max_samples=16,
                  key_sampling=key_sampling or 'all')
    with pytest.raises(ValueError, match=r'generator is on cpu.*cuda'):
        loss(e, lab, lab, queue=bank, generator=_gen(0))
