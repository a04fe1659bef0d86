import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_contrast.models.losses.reco_loss import ReCoLoss, _GatherDot

from helpers.devices import CUDA, DEVICES
from helpers.tool_loading import load_tool

TAU = 0.5


def build(**kw):
    cfg = dict(type='ReCoLoss', temperature=0.5, num_queries=256,
               num_negatives=512, strong_threshold=0.97, ignore_index=255,
               loss_weight=1.0, loss_name='loss_reco')
    cfg.update(kw)
    return MODELS.build(cfg)


def gen(seed=0, device='cpu'):
    return torch.Generator(device=device).manual_seed(seed)


def random_problem(B=2, D=8, h=6, w=7, C=4, seed=0, ignore_frac=0.1,
                   device='cpu'):
    """The same problem on every device (drawn on the CPU, then moved)."""
    g = torch.Generator().manual_seed(seed)
    lab = torch.randint(0, C, (B, h, w), generator=g)
    lab[torch.rand(B, h, w, generator=g) < ignore_frac] = 255
    rep = torch.randn(B, D, h, w, generator=g)
    rep += 2 * torch.randn(C, D, generator=g)[lab.clamp(max=C - 1)].permute(
        0, 3, 1, 2)
    prob = torch.softmax(3 * torch.randn(B, C, h, w, generator=g), 1)
    return rep.to(device), lab.to(device), prob.to(device)


def const_problem(feats, labels, C=None, probs_own=None, D=None,
                  device='cpu'):
    """Label map ``labels`` (B,h,w); pixel feature = feats[label] * random
    positive scale (cosine is scale invariant); prob uniform unless given."""
    labels = torch.as_tensor(labels)
    feats = torch.as_tensor(feats, dtype=torch.float32)
    C = C or feats.shape[0]
    B, h, w = labels.shape
    scale = 0.5 + torch.rand(B, 1, h, w, generator=gen(1)) * 3
    rep = feats[labels.clamp(max=feats.shape[0] - 1)].permute(0, 3, 1, 2)
    rep = (rep * scale).contiguous()
    prob = torch.full((B, C, h, w), 1.0 / C)
    return rep.to(device), labels.to(device), prob.to(device)


def infonce(pos_cos, neg_cos, n):
    """-log(e^{p/t} / (e^{p/t} + n e^{q/t}))"""
    return -(pos_cos / TAU) + math.log(
        math.exp(pos_cos / TAU) + n * math.exp(neg_cos / TAU))


# ---------------------------------------------------------------- interface
def test_build_exact_interface():
    loss = build()
    assert isinstance(loss, ReCoLoss)
    assert loss.loss_name == 'loss_reco'
    assert (loss.temperature, loss.num_queries, loss.num_negatives,
            loss.strong_threshold, loss.ignore_index,
            loss.loss_weight) == (0.5, 256, 512, 0.97, 255, 1.0)
    rep, lab, prob = random_problem()
    value = loss(rep, lab, prob)
    assert value.dim() == 0 and torch.isfinite(value)


# ----------------------------------------------------- hand-computed values
@pytest.mark.parametrize('device', DEVICES)
def test_two_classes_constant_features(device):
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([0.6, 0.8, 0.0])  # cos(a, b) = 0.6
    lab = torch.zeros(2, 4, 5, dtype=torch.long)
    lab[:, :, 3:] = 1
    lab[0, 0, 0] = 255
    rep, lab, prob = const_problem(torch.stack([a, b]), lab, device=device)
    expected = infonce(1.0, 0.6, 512)  # both classes, / K = 2 -> same
    for q, n in [(256, 512), (3, 512)]:
        loss = build(num_queries=q)
        value = loss(rep, lab, prob, generator=gen(device=device))
        assert value.device == rep.device
        assert value.item() == pytest.approx(expected, rel=1e-5)
    # loss_weight scales the value
    value = build(loss_weight=0.25)(rep, lab, prob,
                                    generator=gen(device=device))
    assert value.item() == pytest.approx(0.25 * expected, rel=1e-5)


@pytest.mark.parametrize('device', DEVICES)
def test_skipped_class_counts_in_denominator(device):
    # class 0 feature a, classes 1 and 2 the same feature b, only class 0
    # has hard pixels: negatives of class 0 are always b-like.
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([0.0, 1.0])  # cos = 0
    lab = torch.tensor([[[0, 0, 1, 1], [0, 2, 2, 1]]])
    rep, lab, prob = const_problem(torch.stack([a, b, b]), lab,
                                   device=device)
    prob = torch.zeros_like(prob)
    prob.scatter_(1, lab.unsqueeze(1), 1.0)  # every pixel easy ...
    prob[0, :, 0, 0] = 1.0 / 3  # ... except one pixel of class 0
    value = build()(rep, lab, prob, generator=gen(device=device))
    assert value.item() == pytest.approx(infonce(1.0, 0.0, 512) / 3,
                                         rel=1e-5)
    # an absent class (here 3, C = 4) and ignored pixels change nothing
    prob4 = torch.cat([prob, torch.zeros_like(prob[:, :1])], 1)
    lab4 = lab.clone()
    value4 = build()(rep, lab4, prob4, generator=gen(device=device))
    assert value4.item() == pytest.approx(value.item(), rel=1e-6)


@pytest.mark.parametrize('device', DEVICES)
def test_prototype_is_mean_of_raw_features(device):
    # class 0: one hard pixel h and easy pixels of different norms; class 1:
    # a single easy pixel v (so every negative is v and is not sampled).
    D = 3
    feats = torch.tensor([[1.0, 0.0, 0.0],     # hard pixel h of class 0
                          [0.0, 10.0, 0.0],    # easy, large norm
                          [0.0, 0.0, 1.0],     # easy, small norm
                          [1.0, 1.0, 1.0],     # the only pixel of class 1
                          [5.0, 5.0, -5.0]])   # ignored
    labels = torch.tensor([0, 0, 0, 1, 255])
    own = torch.tensor([0.5, 0.99, 0.98, 0.99, 0.1])
    rep = feats.t().reshape(1, D, 1, 5)
    lab = labels.view(1, 1, 5)
    prob = torch.zeros(1, 2, 1, 5)
    prob[0, 0, 0] = torch.where(labels == 1, 1 - own, own)
    prob[0, 1, 0] = 1 - prob[0, 0, 0]
    rep, lab, prob = rep.to(device), lab.to(device), prob.to(device)
    rep.requires_grad_(True)
    value = build(num_queries=7, num_negatives=11)(
        rep, lab, prob, generator=gen(device=device))
    proto0 = feats[:3].mean(0)  # raw mean, NOT mean of unit vectors
    h, v = feats[0], feats[3]
    logits = torch.cat([
        F.cosine_similarity(h, proto0, dim=0).view(1),
        F.cosine_similarity(h, v, dim=0).repeat(11)
    ]) / TAU
    expected = F.cross_entropy(logits[None], torch.zeros(1).long()) / 2
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    unit_mean = F.normalize(feats[:3], dim=1).mean(0)
    wrong = F.cross_entropy(
        (torch.cat([F.cosine_similarity(h, unit_mean, dim=0).view(1),
                    logits[1:] * TAU]) / TAU)[None],
        torch.zeros(1).long()) / 2
    assert abs(wrong.item() - expected.item()) > 1e-2
    # only the hard query pixel gets gradient
    value.backward()
    g = rep.grad.abs().sum(1).flatten().cpu()
    assert g[0] > 0 and torch.all(g[1:] == 0)


def reference_loop_loss(loss, rep, samples):
    """Per-class loop in the reference's style for given samples."""
    D = rep.shape[1]
    R = rep.permute(0, 2, 3, 1).reshape(-1, D)
    total = 0
    for a, c in enumerate(samples.classes.tolist()):
        anchors = R[samples.query_index[a]]
        negs = R.detach()[samples.negative_index[a]]
        keys = torch.cat([
            samples.prototypes[c].expand(loss.num_queries, 1, D), negs], 1)
        logits = F.cosine_similarity(anchors.unsqueeze(1), keys, dim=2)
        total = total + F.cross_entropy(
            logits / loss.temperature,
            torch.zeros(loss.num_queries, dtype=torch.long,
                        device=rep.device))
    return loss.loss_weight * total / samples.num_present


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('matmul_ratio', [0, 10**9])
def test_matches_loop_computation_for_fixed_samples(matmul_ratio, device,
                                                    monkeypatch):
    monkeypatch.setattr(_GatherDot, 'matmul_max_ratio', matmul_ratio)
    loss = build(num_queries=16, num_negatives=24, loss_weight=0.7,
                 max_chunk_elements=500)  # several chunks
    rep, lab, prob = random_problem(C=5, D=6, device=device)
    samples = loss.sample(rep, lab, prob, generator=gen(3, device))
    assert samples.classes.numel() >= 3
    r1 = rep.clone().requires_grad_(True)
    r2 = rep.clone().requires_grad_(True)
    v1 = loss.loss_from_samples(r1, samples)
    v2 = reference_loop_loss(loss, r2, samples)
    assert v1.item() == pytest.approx(v2.item(), rel=1e-5)
    v1.backward()
    v2.backward()
    torch.testing.assert_close(r1.grad, r2.grad, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------- sampling
@pytest.mark.parametrize('device', DEVICES)
def test_samples_are_valid_pixels_of_the_right_classes(device):
    loss = build(num_queries=64, num_negatives=32)
    rep, lab, prob = random_problem(C=5, device=device)
    s = loss.sample(rep, lab, prob, generator=gen(device=device))
    assert s.query_index.device == rep.device
    flat_lab = lab.flatten()
    own = prob.permute(0, 2, 3, 1).reshape(-1, 5).gather(
        1, flat_lab.clamp(max=4)[:, None]).squeeze(1)
    present = torch.unique(flat_lab[flat_lab != 255])
    hard_classes = torch.unique(flat_lab[(flat_lab != 255) & (own < 0.97)])
    assert s.classes.tolist() == hard_classes.tolist()
    assert int(s.num_present) == present.numel()
    for a, c in enumerate(s.classes.tolist()):
        q = s.query_index[a]
        assert torch.all(flat_lab[q] == c) and torch.all(own[q] < 0.97)
        negc = s.negative_class[a]
        assert torch.all(negc != c)
        assert torch.all(torch.isin(negc, present))
        assert torch.all(flat_lab[s.negative_index[a]] == negc)


@pytest.mark.parametrize('device', DEVICES)
def test_negative_class_distribution_matches_prototype_softmax(device):
    C = 5
    loss = build(num_queries=256, num_negatives=512)
    rep, lab, prob = random_problem(C=C, h=8, w=8, ignore_frac=0.0,
                                    device=device)
    lab[lab == 3] = 255  # class 3 absent
    s = loss.sample(rep, lab, prob, generator=gen(5, device))
    # independent computation of the class relation graph
    R = rep.permute(0, 2, 3, 1).reshape(-1, rep.shape[1])
    fl = lab.flatten()
    present = [c for c in range(C) if (fl == c).any()]
    protos = {c: R[fl == c].mean(0) for c in present}
    for a, c in enumerate(s.classes.tolist()):
        others = [j for j in present if j != c]
        sims = torch.stack([
            F.cosine_similarity(protos[c], protos[j], dim=0) for j in others
        ])
        p = torch.softmax(sims / TAU, 0)
        torch.testing.assert_close(s.negative_class_prob[a, others], p,
                                   rtol=1e-5, atol=1e-6)
        assert s.negative_class_prob[a, [c, 3]].sum() == 0
        freq = torch.bincount(s.negative_class[a].flatten(), minlength=C)
        freq = freq.double() / freq.sum()
        # 131072 draws per class: std <= 0.0014, allow ~7 sigma
        np.testing.assert_allclose(freq[others].cpu().numpy(),
                                   p.cpu().numpy(), atol=0.01)


@pytest.mark.parametrize('device', DEVICES)
def test_query_and_negative_pixels_are_uniform(device):
    # class 0: 4 hard pixels + 1 easy; class 1: 3 pixels
    lab = torch.tensor([[[0, 0, 0, 0, 0, 1, 1, 1]]])
    rep = torch.randn(1, 4, 1, 8, generator=gen(2))
    prob = torch.zeros(1, 2, 1, 8)
    prob[0, 0, 0, :5] = torch.tensor([0.5, 0.6, 0.7, 0.8, 0.99])
    prob[0, 1, 0, :5] = 1 - prob[0, 0, 0, :5]
    prob[0, 1, 0, 5:] = 0.99
    prob[0, 0, 0, 5:] = 0.01
    loss = build(num_queries=40000, num_negatives=3)
    rep, lab, prob = rep.to(device), lab.to(device), prob.to(device)
    s = loss.sample(rep, lab, prob, generator=gen(4, device))
    assert s.classes.tolist() == [0]
    q = torch.bincount(s.query_index[0].cpu(), minlength=8).double() / 40000
    np.testing.assert_allclose(q[:4].numpy(), 0.25, atol=0.015)
    assert q[4:].sum() == 0
    n = torch.bincount(s.negative_index[0].flatten().cpu(),
                       minlength=8).double()
    n = n / n.sum()
    np.testing.assert_allclose(n[5:].numpy(), 1 / 3, atol=0.015)


def test_mean_matches_reference_port():
    """Same distribution as the loop-style reference port (benchmark)."""
    bench = load_tool('analysis/benchmark_reco.py')
    C = 4
    rep, lab, prob = random_problem(C=C, D=5, h=5, w=6)
    loss = build(num_queries=32, num_negatives=64)
    g = gen(0)
    ours = [loss(rep, lab, prob, generator=g).item() for _ in range(60)]
    mask = (lab != 255).float().unsqueeze(1)
    onehot = F.one_hot(lab.clamp(max=C - 1), C).permute(0, 3, 1, 2).float()
    torch.manual_seed(0)
    np.random.seed(0)
    ref = [
        bench.reference_compute_reco_loss(
            rep, onehot, mask, prob, strong_threshold=0.97, temp=0.5,
            num_queries=32, num_negatives=64).item() for _ in range(60)
    ]
    se = math.sqrt((np.var(ours) + np.var(ref)) / 60)
    assert abs(np.mean(ours) - np.mean(ref)) < 4 * se + 1e-4
    assert np.std(ours) > 0  # sampling actually varies


# ----------------------------------------------------------- edge cases
def _assert_connected_zero(value, rep):
    assert value.item() == 0.0
    assert value.device == rep.device
    assert value.requires_grad
    value.backward()
    assert rep.grad is not None and torch.all(rep.grad == 0)


@pytest.mark.parametrize('device', DEVICES)
def test_one_class_gives_connected_zero(device):
    rep, lab, prob = random_problem(C=3, device=device)
    lab[lab != 255] = 2
    rep.requires_grad_(True)
    _assert_connected_zero(build()(rep, lab, prob), rep)


@pytest.mark.parametrize('device', DEVICES)
def test_all_ignore_gives_connected_zero(device):
    rep, lab, prob = random_problem(C=3, device=device)
    lab[:] = 255
    rep.requires_grad_(True)
    _assert_connected_zero(build()(rep, lab, prob), rep)


@pytest.mark.parametrize('device', DEVICES)
def test_no_hard_pixels_gives_connected_zero(device):
    rep, lab, prob = random_problem(C=3, ignore_frac=0.0, device=device)
    prob = F.one_hot(lab, 3).permute(0, 3, 1, 2).float()
    rep.requires_grad_(True)
    _assert_connected_zero(build()(rep, lab, prob), rep)
    # threshold is strict: p == threshold is easy
    prob = torch.where(prob > 0, torch.full_like(prob, 0.97), prob)
    rep.grad = None
    _assert_connected_zero(build()(rep, lab, prob), rep)


# ---------------------------------------------- gradient and determinism
@pytest.mark.parametrize('device', DEVICES)
def test_gradient_only_reaches_query_pixels(device):
    loss = build(num_queries=5, num_negatives=50)
    rep, lab, prob = random_problem(C=4, device=device)
    s = loss.sample(rep, lab, prob, generator=gen(1, device))
    r = rep.clone().requires_grad_(True)
    loss.loss_from_samples(r, s).backward()
    has_grad = r.grad.abs().sum(1).flatten() > 0
    queries = torch.zeros_like(has_grad)
    queries[s.query_index.flatten()] = True
    assert torch.equal(has_grad, queries)
    # the negatives (not queries) get nothing
    negs_only = torch.zeros_like(has_grad)
    negs_only[s.negative_index.flatten()] = True
    negs_only &= ~queries
    assert negs_only.any() and not has_grad[negs_only].any()


@pytest.mark.parametrize('device', DEVICES)
def test_seeded_determinism(device):
    loss = build(num_queries=32, num_negatives=64)
    rep, lab, prob = random_problem(C=5, device=device)
    values, grads = [], []
    for seed in (7, 7, 8):
        r = rep.clone().requires_grad_(True)
        v = loss(r, lab, prob, generator=gen(seed, device))
        v.backward()
        values.append(v.item())
        grads.append(r.grad)
    assert values[0] == values[1]
    assert torch.equal(grads[0], grads[1])
    assert values[0] != values[2]


# ------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    loss = build()
    rep, lab, prob = random_problem(C=4)
    bad = lab.clone()
    bad[0, 0, 0] = 4
    with pytest.raises(ValueError, match='outside'):
        loss(rep, bad, prob)
    with pytest.raises(ValueError, match='seg_label must have shape'):
        loss(rep, lab[:, :-1], prob)
    with pytest.raises(ValueError, match='prob must have shape'):
        loss(rep, lab, prob[..., :-1])
    with pytest.raises(ValueError, match='integer'):
        loss(rep, lab.float(), prob)
    with pytest.raises(ValueError, match='temperature'):
        build(temperature=0)
    with pytest.raises(ValueError, match='generator'):
        # (a stand-in: a CUDA generator cannot be made without a GPU)
        loss(rep, lab, prob,
             generator=SimpleNamespace(device=torch.device('cuda')))


@pytest.mark.parametrize('device', [CUDA])
def test_cpu_generator_with_cuda_tensors_is_one_clear_error(device):
    rep, lab, prob = random_problem(C=4, device=device)
    with pytest.raises(ValueError, match=r'generator is on cpu.*cuda'):
        build()(rep, lab, prob, generator=gen())
