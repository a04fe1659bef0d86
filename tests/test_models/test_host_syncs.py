"""Host synchronisations per training step: at most ONE sync-prone call
per forward + backward of each loss (PixelContrastLoss in-batch and memory
mode, ReCoLoss), none in the contrast terms given samples, the ReCo loss
given samples, the memory bank's single-process enqueue, the mixing, the
EMA teacher update and the pseudo-label padding mask; one in the bank's
DDP gather.

The counter: :mod:`sync_counter` (what it sees and what it cannot).
"""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from sync_counter import SyncCounter, cuda_sync_warnings, sync_debug

from mmseg_contrast.engine.hooks import MeanTeacherHook
from mmseg_contrast.models.losses import PixelContrastLoss, ReCoLoss
from mmseg_contrast.models.losses.contrast_terms import (
    in_batch_contrast,
    memory_contrast,
)
from mmseg_contrast.models.utils import PixelMemoryBank, mix_batch

from helpers.devices import CUDA, DEVICES
from helpers.semi_helpers import make_batch, quiet_init, semi_cfg


# ------------------------------------------------------------ the counter
def test_counter_sees_each_sync_prone_call():
    x = torch.arange(6)
    cases = [
        (lambda: x[1].item(), 'item'), (lambda: x.tolist(), 'tolist'),
        (lambda: x.cpu(), 'cpu'), (lambda: x.numpy(), 'numpy'),
        (lambda: bool(x[1]), '__bool__'), (lambda: int(x[1]), '__int__'),
        (lambda: float(x[1]), '__float__'),
        (lambda: range(x[2]), '__index__'),
        (lambda: torch.tensor([1, 2]), 'tensor'),
        (lambda: x.nonzero(), 'aten.nonzero'),
        (lambda: torch.unique(x), 'aten._unique2'),
        (lambda: x[x > 2], 'aten.index[bool]'),
        (lambda: x.masked_select(x > 2), 'aten.masked_select'),
        (lambda: torch.equal(x, x), 'aten.equal'),
        (lambda: x.repeat_interleave(x), 'aten.repeat_interleave[tensor]'),
    ]
    for fn, name in cases:
        with SyncCounter() as c:
            fn()
        assert c.calls[name] == c.total == 1, (name, dict(c.calls))
    # composite ops are seen through: F.one_hot reads min and max (CPU)
    with SyncCounter() as c:
        F.one_hot(x, 6)
    assert c.calls['aten._local_scalar_dense'] == c.total == 2
    # fixed-shape work is not counted
    idx = torch.tensor([0, 2])
    with SyncCounter() as c:
        x[idx], x.repeat_interleave(3), x.masked_fill(x > 2, 0)
        x.argsort(stable=True), torch.where(x > 2, x, 0), x.shape[0]
    assert c.total == 0, dict(c.calls)


# ------------------------------------------------------------ the losses
def _contrast_problem(device, D=16, h=32, w=32, C=5, B=2):
    g = torch.Generator().manual_seed(0)
    lab = torch.randint(0, C, (B, h // 4, w // 4), generator=g)
    lab = lab.repeat_interleave(4, 1).repeat_interleave(4, 2)
    lab[:, :2] = 255
    embed = F.normalize(torch.randn(B, D, h, w, generator=g), dim=1)
    pred = torch.randint(0, C, (B, h, w), generator=g)
    return embed.to(device), lab.to(device), pred.to(device)


def _filled_bank(device, embed, lab, C=5):
    bank = PixelMemoryBank(C, embed.shape[1], memory_size=64,
                           pixel_per_image=4).to(device)
    bank.enqueue(embed, lab)
    return bank


def _pixel_contrast_step(device, key_sampling=None):
    embed, lab, pred = _contrast_problem(device)
    bank = None if key_sampling is None else _filled_bank(
        device, embed, lab)
    loss = PixelContrastLoss(max_samples=200, max_views=20,
                             key_sampling=key_sampling or 'all',
                             num_keys=16)
    embed.requires_grad_(True)
    gen = torch.Generator(device=device).manual_seed(1)

    def step():
        value = loss(embed, lab, pred, queue=bank, generator=gen)
        value.backward()
        return value

    return step


def _reco_step(device):
    g = torch.Generator().manual_seed(2)
    B, D, h, w, C = 2, 8, 16, 16, 5
    lab = torch.randint(0, C, (B, h, w), generator=g)
    lab[:, :3] = 255
    rep = torch.randn(B, D, h, w, generator=g).to(device)
    prob = torch.softmax(torch.randn(B, C, h, w, generator=g), 1)
    lab, prob = lab.to(device), prob.to(device)
    rep.requires_grad_(True)
    loss = ReCoLoss(num_queries=16, num_negatives=32)
    gen = torch.Generator(device=device).manual_seed(3)

    def step():
        value = loss(rep, lab, prob, generator=gen)
        value.backward()
        return value

    return step


LOSS_STEPS = {
    'pixel_contrast_in_batch': lambda d: _pixel_contrast_step(d),
    'pixel_contrast_memory_all': lambda d: _pixel_contrast_step(d, 'all'),
    'pixel_contrast_memory_hardest':
    lambda d: _pixel_contrast_step(d, 'hardest'),
    'pixel_contrast_memory_semi_hard':
    lambda d: _pixel_contrast_step(d, 'semi_hard'),
    'reco': _reco_step,
}


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('name', sorted(LOSS_STEPS))
def test_loss_forward_backward_has_one_sync(name, device):
    step = LOSS_STEPS[name](device)
    with SyncCounter() as c:
        value = step()
    assert torch.isfinite(value) and value.item() > 0
    assert c.total == 1, dict(c.calls)


@pytest.mark.parametrize('device', [CUDA])
@pytest.mark.parametrize('name', sorted(LOSS_STEPS))
def test_loss_forward_backward_cuda_sync_debug_warns_once(name, device):
    step = LOSS_STEPS[name](device)
    step()  # warm-up: lazy initialisation is not the loss's
    torch.cuda.synchronize()
    with cuda_sync_warnings() as got:
        step()
    assert len(got) <= 1, got


# ------------------------------------------------- parts without any sync
def _contrast_terms(device):
    g = torch.Generator().manual_seed(4)
    feats = F.normalize(torch.randn(3, 4, 8, generator=g), dim=-1)
    labels = torch.tensor([0, 1, 1])
    feats, labels = feats.to(device), labels.to(device)
    embed, lab, _ = _contrast_problem(device, D=8)
    bank = _filled_bank(device, embed, lab)
    gen = torch.Generator(device=device).manual_seed(5)
    flat, y = feats.reshape(12, 8), labels.repeat_interleave(4)

    def run():
        in_batch_contrast(feats, labels, 0.1, 0.07)
        memory_contrast(flat, y, bank, 0.1, 0.07)
        memory_contrast(flat, y, bank, 0.1, 0.07, 'hardest', 4)
        memory_contrast(flat, y, bank, 0.1, 0.07, 'semi_hard', 4,
                        generator=gen)

    return run


def _reco_given_samples(device):
    g = torch.Generator().manual_seed(6)
    lab = torch.randint(0, 4, (2, 8, 8), generator=g).to(device)
    rep = torch.randn(2, 8, 8, 8, generator=g).to(device)
    prob = torch.softmax(torch.randn(2, 4, 8, 8, generator=g), 1)
    loss = ReCoLoss(num_queries=8, num_negatives=16)
    samples = loss.sample(rep, lab, prob.to(device),
                          generator=torch.Generator(device=device).manual_seed(7))
    rep.requires_grad_(True)
    return lambda: loss.loss_from_samples(rep, samples).backward()


def _bank_enqueue(device):
    embed, lab, _ = _contrast_problem(device, D=8)
    bank = PixelMemoryBank(5, 8, memory_size=64,
                           pixel_per_image=4).to(device)
    return lambda: bank.enqueue(embed, lab)


def _mixing(device):
    g = torch.Generator().manual_seed(8)
    img = torch.randn(3, 3, 16, 16, generator=g).to(device)
    label = torch.randint(0, 4, (3, 16, 16), generator=g).to(device)
    conf = torch.rand(3, 16, 16, generator=g).to(device)
    gen = torch.Generator(device=device).manual_seed(9)

    def run():
        for mode in ('classmix', 'cutmix', 'cutout'):
            mix_batch(mode, img, label, conf, 4, 255, generator=gen)

    return run


def _ema(device):
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.student = torch.nn.Sequential(torch.nn.Linear(3, 4),
                                        torch.nn.BatchNorm1d(4))
    model.teacher = torch.nn.Sequential(torch.nn.Linear(3, 4),
                                        torch.nn.BatchNorm1d(4))
    model.to(device)
    hook = MeanTeacherHook()

    def run():
        hook.momentum_update(model, 0.)
        hook.momentum_update(model, 0.9)

    return run


def _pseudo_labels(device):
    torch.manual_seed(0)
    model = quiet_init(MODELS.build(semi_cfg(reco=False))).to(device)
    data = make_batch(n_lab=1, n_unl=2)
    data['inputs'][2] = data['inputs'][2][:, :20, :24]
    data['data_samples'][2].set_metainfo(dict(img_shape=(20, 24)))
    data['data_samples'][2].pop('img_strong')
    batch = model.data_preprocessor(data, True)
    weak = batch['inputs']['unsup_weak']
    samples = batch['data_samples']['unsup']
    return lambda: model.get_pseudo_labels(weak, samples)


SYNC_FREE = {
    'contrast_terms': _contrast_terms,
    'reco_loss_from_samples': _reco_given_samples,
    'bank_enqueue': _bank_enqueue,
    'mixing': _mixing,
    'ema_update': _ema,
    'pseudo_label_padding': _pseudo_labels,
}


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('name', sorted(SYNC_FREE))
def test_sync_free_parts(name, device):
    run = SYNC_FREE[name](device)
    with SyncCounter() as c:
        run()
    assert c.total == 0, dict(c.calls)


@pytest.mark.parametrize('device', [CUDA])
@pytest.mark.parametrize('name', sorted(SYNC_FREE))
def test_sync_free_parts_under_cuda_sync_debug_error(name, device):
    run = SYNC_FREE[name](device)
    run()  # warm-up
    torch.cuda.synchronize()
    with sync_debug('error'):
        run()
    torch.cuda.synchronize()


@pytest.mark.parametrize('device', DEVICES)
def test_bank_gather_reads_the_row_counts_once(device):
    """The DDP path's payload compaction (single process: ``all_gather``
    returns the local tensor) reads the gathered counts once."""
    embed, lab, _ = _contrast_problem(device, D=8)
    bank = PixelMemoryBank(5, 8, memory_size=64,
                           pixel_per_image=4).to(device)
    bank.enqueue(embed, lab)  # sets last_nonfinite
    C, D, K = 5, 8, 4
    seg = torch.randn(2 * C, D, device=device)
    seg_cls = torch.tensor([0, 1, C, 3, C, 0, C, 2, 4, C], device=device)
    pix = torch.randn(2 * C * K, D, device=device)
    pix_cls = torch.full((2 * C * K, ), C, device=device)
    pix_cls[::3] = 1
    with SyncCounter() as c:
        out = bank._gather_written(seg, seg_cls, pix, pix_cls)
    assert c.total == 1 and c.calls['tolist'] == 1, dict(c.calls)
    assert out[1].tolist() == [0, 1, 3, 0, 2, 4]
