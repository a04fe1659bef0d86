"""ClassMix / CutMix / CutOut keep image, label and confidence aligned."""
from types import SimpleNamespace

import pytest
import torch

from mmseg_contrast.models.utils.mixing import (
    BatchMixer,
    box_masks,
    classmix_masks,
    mix_batch,
)
from mmseg_contrast.models.utils.unsup_augment import UnsupBatchAugment

from helpers.devices import CUDA, DEVICES

IGNORE = 255
C = 6


def _gen(seed, device='cpu'):
    return torch.Generator(device=device).manual_seed(seed)


def _batch(B=4, H=24, W=20, seed=0, device='cpu'):
    """Images whose channel 0 encodes the label, channel 1 the image id;
    confidence encodes the label too (the same batch on every device)."""
    g = torch.Generator().manual_seed(seed)
    # blocky labels so every image has several classes
    blocks = torch.randint(0, C, (B, 4, 4), generator=g)
    label = blocks.repeat_interleave(H // 4, 1).repeat_interleave(W // 4, 2)
    label[:, :2, :3] = IGNORE
    img = torch.stack([
        label.float(),
        torch.arange(B).float()[:, None, None].expand(B, H, W),
        torch.rand(B, H, W, generator=g)
    ], 1)
    conf = torch.where(label == IGNORE, torch.zeros(()), label / 10. + 0.05)
    return img.to(device), label.to(device), conf.to(device)


def _check_aligned(img, label, conf):
    valid = label != IGNORE
    assert torch.equal(img[:, 0][valid], label[valid].float())
    assert torch.allclose(conf[valid], label[valid] / 10. + 0.05)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('mode', ['classmix', 'cutmix'])
def test_mix_keeps_alignment_and_partner(mode, device):
    img, label, conf = _batch(device=device)
    B = img.shape[0]
    g = _gen(1, device)
    m_img, m_lab, m_conf = mix_batch(mode, img, label, conf, num_classes=C,
                                     ignore_index=IGNORE, generator=g)
    assert m_img.shape == img.shape and m_lab.dtype == label.dtype
    _check_aligned(m_img, m_lab, m_conf)
    src = m_img[:, 1]
    ar = torch.arange(B, device=device)
    own = ar.float()[:, None, None]
    partner = ((ar + 1) % B).float()[:, None, None]
    from_own = src == own
    from_partner = src == partner
    assert bool((from_own | from_partner).all())
    # pixels keep their position: the third channel matches its source image
    exp = torch.where(from_own, img[:, 2], img[:, 2].roll(-1, 0))
    assert torch.equal(m_img[:, 2], exp)
    # the ignore pixels of the sources travel with them
    exp_lab = torch.where(from_own, label, label.roll(-1, 0))
    assert torch.equal(m_lab, exp_lab)
    assert bool(from_partner.any()) and bool(from_own.any())


@pytest.mark.parametrize('device', DEVICES)
def test_classmix_picks_half_of_the_present_classes(device):
    img, label, conf = _batch(B=6, device=device)
    masks = classmix_masks(label, C, IGNORE, generator=_gen(3, device))
    assert masks.device == label.device
    for b in range(label.shape[0]):
        classes = [c for c in label[b].unique().tolist() if c != IGNORE]
        chosen = label[b][masks[b].bool()].unique().tolist()
        assert IGNORE not in chosen
        assert len(chosen) == len(classes) // 2
        for c in classes:  # whole class regions, never part of one
            region = masks[b][label[b] == c]
            assert bool((region == region[0]).all())
        assert not bool(masks[b][label[b] == IGNORE].any())


def test_classmix_reference_quirk_counts_ignore():
    label = torch.full((1, 4, 4), IGNORE)
    label[0, :2] = 1  # classes {1, ignore}: floor(2/2)=1 chosen with quirk
    picked = set()
    for s in range(20):
        m = classmix_masks(label, C, IGNORE, count_ignore_as_class=True,
                           generator=torch.Generator().manual_seed(s))
        assert int(m.sum()) == 8
        picked.add(int(label[m.bool()][0]))
    assert picked == {1, IGNORE}  # the ignore value is picked as a class
    m = classmix_masks(label, C, IGNORE,
                       generator=torch.Generator().manual_seed(0))
    assert int(m.sum()) == 0  # one real class: nothing chosen


@pytest.mark.parametrize('device', DEVICES)
def test_cutmix_box_geometry(device):
    H, W = 24, 20
    masks = box_masks(64, H, W, device, generator=_gen(0, device))
    assert masks.device.type == device
    for m in masks.cpu():
        inside = m == 0
        rows = inside.any(1).nonzero().flatten()
        cols = inside.any(0).nonzero().flatten()
        h = rows.max() - rows.min() + 1
        w = cols.max() - cols.min() + 1
        assert int(inside.sum()) == int(h * w)  # one rectangle
        assert W // 2 + 1 <= int(w) <= W - 1
        assert int(h) == round(H * W / 2 / int(w))


@pytest.mark.parametrize('device', DEVICES)
def test_cutout_zeroes_box_and_ignores_labels(device):
    img, label, conf = _batch(device=device)
    m_img, m_lab, m_conf = BatchMixer('cutout')(
        img, label, conf, ignore_index=IGNORE, generator=_gen(0, device))
    box = (m_img == 0).all(1) & (img != 0).any(1)
    assert bool(box.any())
    assert bool((m_lab[box] == IGNORE).all())
    assert bool((m_conf[box] == 0).all())
    keep = ~((m_img == 0).all(1))
    assert torch.equal(m_img.permute(1, 0, 2, 3)[:, keep],
                       img.permute(1, 0, 2, 3)[:, keep])
    assert torch.equal(m_lab[keep], label[keep])
    _check_aligned(m_img, m_lab, m_conf)


@pytest.mark.parametrize('device', DEVICES)
def test_seeded_and_errors(device):
    img, label, conf = _batch(device=device)
    a = mix_batch('classmix', img, label, conf, C, IGNORE,
                  generator=_gen(5, device))
    b = mix_batch('classmix', img, label, conf, C, IGNORE,
                  generator=_gen(5, device))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match='unknown mixing mode'):
        BatchMixer('mixup')
    with pytest.raises(ValueError, match='same batch and size'):
        mix_batch('cutmix', img, label[:, :-1], conf)
    with pytest.raises(ValueError, match='num_classes'):
        mix_batch('classmix', img, label, conf)
    out = mix_batch('none', img, label, conf)
    assert out[0] is img and out[1] is label


@pytest.mark.parametrize('mode', ['classmix', 'cutmix', 'cutout'])
def test_generator_on_another_device_is_one_clear_error(mode):
    """(a stand-in: a CUDA generator cannot be made without a GPU); the
    mixing never draws on another device and copies."""
    img, label, conf = _batch()
    cuda_gen = SimpleNamespace(device=torch.device('cuda'))
    with pytest.raises(ValueError, match='generator is on cuda'):
        mix_batch(mode, img, label, conf, C, IGNORE, generator=cuda_gen)
    aug = UnsupBatchAugment(scale=(0.5, 1.5), flip_prob=0.5)
    with pytest.raises(ValueError, match='generator is on cuda'):
        aug.geometric(img, label, conf, IGNORE, generator=cuda_gen)


@pytest.mark.parametrize('device', [CUDA])
@pytest.mark.parametrize('mode', ['classmix', 'cutmix', 'cutout'])
def test_cpu_generator_with_cuda_tensors_is_one_clear_error(mode, device):
    img, label, conf = _batch(device=device)
    with pytest.raises(ValueError, match=r'generator is on cpu.*cuda'):
        mix_batch(mode, img, label, conf, C, IGNORE, generator=_gen(0))
