"""fp16 / bf16 safety of the losses and the memory bank: every sum over
pixels is accumulated in fp32.

The batches are shaped like the real ones where an fp16 sum overflows
(> 65504): Cityscapes-semi (4 x D x 128 x 128 representation, one class on
~42k pixels, representation mean >= 1) and VOC 10+10 (20 x D x 81 x 81,
mean 0.8); D is reduced (the overflow is about the number of pixels of a
class times the mean). The representation enters as a conv under autocast
would give it (``rep.to(dtype)``) and the loss runs inside the caller's
autocast. Targets: finite, and within 1 % of fp32.
"""
import functools

import pytest
import torch
import torch.nn.functional as F
from test_reco_loss import build, const_problem, gen, infonce, random_problem

from mmseg_contrast.models.losses import PixelContrastLoss, ReCoLoss
from mmseg_contrast.models.utils import PixelMemoryBank

from helpers.devices import DEVICES

FP16_MAX = 65504.
LOW = [torch.float16, torch.bfloat16]
#: name -> (B, D, h, w, C, pixels of class 0, representation mean)
SHAPES = {
    'cityscapes_semi': (4, 32, 128, 128, 19, 42000, 1.0),
    'voc_10_10': (20, 16, 81, 81, 21, 80000, 0.8),
}


@functools.lru_cache(maxsize=None)
def _problem_cpu(name):
    B, D, h, w, C, big, mean = SHAPES[name]
    g = torch.Generator().manual_seed(0)
    lab = torch.randint(1, C, (B, h, w), generator=g).view(-1)
    lab[torch.randperm(lab.numel(), generator=g)[:big]] = 0
    lab[torch.rand(lab.numel(), generator=g) < 0.02] = 255
    lab = lab.view(B, h, w)
    centers = mean + 0.5 * torch.randn(C, D, generator=g)
    rep = centers[lab.clamp(max=C - 1)].permute(0, 3, 1, 2)
    rep = (rep + 0.5 * torch.randn(B, D, h, w, generator=g)).contiguous()
    prob = torch.softmax(2 * torch.randn(B, C, h, w, generator=g), 1)
    return rep, lab, prob


def _problem(name, device):
    return tuple(t.to(device) for t in _problem_cpu(name))


def _reco(device, rep, lab, prob):
    loss = ReCoLoss(num_queries=64, num_negatives=128)
    gen = torch.Generator(device=device).manual_seed(1)
    return loss(rep, lab, prob, generator=gen)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', LOW)
@pytest.mark.parametrize('name', sorted(SHAPES))
def test_reco_low_precision_autocast_finite_and_within_1pct(
        name, dtype, device):
    rep, lab, prob = _problem(name, device)
    # the batch does overflow an fp16 prototype sum
    class0 = rep.permute(0, 2, 3, 1)[lab == 0].double().sum(0)
    assert class0.abs().max() > FP16_MAX
    ref = _reco(device, rep, lab, prob)
    r = rep.to(dtype).requires_grad_(True)
    with torch.autocast(device, dtype=dtype):
        value = _reco(device, r, lab, prob)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert value.item() == pytest.approx(ref.item(), rel=0.01)
    value.backward()
    assert r.grad.dtype == dtype and torch.isfinite(r.grad).all()
    assert r.grad.abs().sum() > 0


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_reco_half_precision_inputs(dtype, device):
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([0.6, 0.8, 0.0])
    lab = torch.zeros(1, 4, 6, dtype=torch.long)
    lab[:, :, 3:] = 1
    rep, lab, prob = const_problem(torch.stack([a, b]), lab, device=device)
    rep = rep.to(dtype).requires_grad_(True)
    value = build()(rep, lab, prob.to(dtype), generator=gen(device=device))
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(infonce(1.0, 0.6, 512), rel=1e-2)
    value.backward()
    assert rep.grad.dtype == dtype and torch.isfinite(rep.grad).all()
    # a generic problem stays finite and close to fp32 for the same seed
    rep32, lab2, prob2 = random_problem(C=4, device=device)
    v32 = build()(rep32, lab2, prob2, generator=gen(9, device))
    vh = build()(rep32.to(dtype), lab2, prob2.to(dtype),
                 generator=gen(9, device))
    assert torch.isfinite(vh)
    assert vh.item() == pytest.approx(v32.item(), rel=0.05)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', LOW)
def test_reco_fp32_input_under_autocast_equals_fp32(dtype, device):
    """An fp32 representation under the caller's autocast: the loss is the
    fp32 loss (no op of the loss runs in low precision)."""
    rep, lab, prob = _problem('cityscapes_semi', device)
    ref = _reco(device, rep, lab, prob)
    with torch.autocast(device, dtype=dtype):
        value = _reco(device, rep, lab, prob)
    assert value.item() == pytest.approx(ref.item(), rel=1e-5)


def _contrast_inputs(device):
    rep, lab, _ = _problem('cityscapes_semi', device)
    embed = F.normalize(rep, dim=1)
    g = torch.Generator(device=device).manual_seed(2)
    wrong = torch.randint(0, 19, lab.shape, generator=g, device=device)
    pred = torch.where(torch.rand(lab.shape, generator=g, device=device)
                       < 0.7, lab, wrong)
    return embed, lab, pred


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', LOW)
@pytest.mark.parametrize('memory', [False, True])
def test_pixel_contrast_low_precision_finite_and_within_1pct(
        memory, dtype, device):
    embed, lab, pred = _contrast_inputs(device)
    bank = None
    if memory:
        bank = PixelMemoryBank(19, embed.shape[1], memory_size=200,
                               pixel_per_image=10).to(device)
        bank.enqueue(embed, lab)
    loss = PixelContrastLoss(max_samples=512, max_views=50)

    def run(e):
        gen = torch.Generator(device=device).manual_seed(3)
        return loss(e, lab, pred, queue=bank, generator=gen)

    ref = run(embed)
    e = embed.to(dtype).requires_grad_(True)
    with torch.autocast(device, dtype=dtype):
        value = run(e)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert value.item() == pytest.approx(ref.item(), rel=0.01)
    value.backward()
    assert torch.isfinite(e.grad).all() and e.grad.abs().sum() > 0


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', LOW)
def test_memory_bank_low_precision_segment_sums_in_fp32(dtype, device):
    """A bank kept in fp16 / bf16 (``model.half()``) fed low-precision keys
    under autocast: the segment means are the fp32 bank's, rounded once.
    An fp16 / bf16 running sum of ~16k unit keys stalls (adding 0.6 to
    2048 is a no-op in fp16) and points the mean elsewhere."""
    B, D, h, w = 2, 2, 128, 128
    g = torch.Generator().manual_seed(4)
    direction = torch.tensor([0.8, 0.6])
    keys = direction[None, :, None, None] + 0.05 * torch.randn(
        B, D, h, w, generator=g)
    keys = F.normalize(keys, dim=1).to(device)
    lab = torch.zeros(B, h, w, dtype=torch.long, device=device)
    ref = PixelMemoryBank(1, D, memory_size=64, pixel_per_image=4)
    ref = ref.to(device)
    ref.enqueue(keys, lab)
    low = PixelMemoryBank(1, D, memory_size=64, pixel_per_image=4)
    low = low.to(device=device, dtype=dtype)
    with torch.autocast(device, dtype=dtype):
        low.enqueue(keys.to(dtype), lab)
    assert low.segment_queue.dtype == dtype
    tol = 2e-3 if dtype == torch.float16 else 1e-2
    torch.testing.assert_close(low.segment_queue[0, :B].float(),
                               ref.segment_queue[0, :B], rtol=0, atol=tol)
    assert torch.equal(low.segment_count, ref.segment_count)
