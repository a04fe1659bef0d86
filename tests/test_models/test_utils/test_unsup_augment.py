"""ReCo's pseudo-label batch augmentation, against per-image references
(numpy pad, OpenCV / PIL resize, scipy's Gaussian filter)."""
import numpy as np
import pytest
import torch
from PIL import Image

from mmseg_contrast.models.utils.unsup_augment import (
    UnsupBatchAugment,
    gaussian_blur_batch,
    random_rescale_crop,
    reflect_index,
)


def test_reflect_index_is_numpy_reflect_for_any_pad():
    for n in (1, 2, 3, 7):
        line = np.arange(n)
        ref = np.pad(line, (0, 5 * n + 3), mode='reflect')
        got = reflect_index(torch.arange(len(ref)), torch.tensor(n))
        assert got.tolist() == ref.tolist(), n


def _nearest(n_in, n_out):
    """PIL's NEAREST source index floor((x + 0.5) * n_in / n_out), exact."""
    return ((2 * np.arange(n_out) + 1) * n_in) // (2 * n_out)


def test_nearest_index_is_pil_nearest_except_exact_ties():
    for n_in, n_out in ((28, 19), (24, 9), (24, 41), (321, 160)):
        a = np.arange(n_in, dtype=np.int32)[None].repeat(2, 0)
        pil = np.asarray(Image.fromarray(a).resize((n_out, 2),
                                                   Image.NEAREST))[0]
        tie = ((2 * np.arange(n_out) + 1) * n_in) % (2 * n_out) == 0
        ours = _nearest(n_in, n_out)
        assert (pil[~tie] == ours[~tie]).all()
        # PIL's 16.16 fixed point may round an exact tie down
        assert np.isin(pil[tie] - ours[tie], (-1, 0)).all()


def _reference(img, label, conf, s, u_y, u_x, out):
    """One image the reference's way: resize (bilinear image / nearest
    label + confidence), pad right/bottom (reflect / 255 / 0), crop."""
    import cv2
    H, W = label.shape
    hs, ws = max(int(np.floor(H * s)), 1), max(int(np.floor(W * s)), 1)
    im = np.stack([cv2.resize(c, (ws, hs), interpolation=cv2.INTER_LINEAR)
                   for c in img])
    iy, ix = _nearest(H, hs), _nearest(W, ws)
    lab, cf = label[iy][:, ix], conf[iy][:, ix]
    ph, pw = max(out[0] - hs, 0), max(out[1] - ws, 0)
    im = np.pad(im, ((0, 0), (0, ph), (0, pw)), mode='reflect')
    lab = np.pad(lab, ((0, ph), (0, pw)), constant_values=255)
    cf = np.pad(cf, ((0, ph), (0, pw)), constant_values=0.)
    i0 = int(np.floor(u_y * (lab.shape[0] - out[0] + 1)))
    j0 = int(np.floor(u_x * (lab.shape[1] - out[1] + 1)))
    sl = (slice(i0, i0 + out[0]), slice(j0, j0 + out[1]))
    return im[(slice(None), ) + sl], lab[sl], cf[sl]


@pytest.mark.parametrize('scale,crop', [((0.5, 1.5), None),
                                        ((0.4, 0.6), (20, 24)),
                                        ((1.5, 2.0), (16, 16))])
def test_rescale_crop_matches_per_image_reference(scale, crop):
    g = torch.Generator().manual_seed(0)
    B, H, W = 6, 24, 28
    img = torch.rand(B, 3, H, W, generator=g)
    label = torch.randint(0, 5, (B, H, W), generator=g)
    conf = torch.rand(B, H, W, generator=g)
    seed = 7
    out = random_rescale_crop(img, label, conf, scale, crop, 255,
                              torch.Generator().manual_seed(seed))
    u = torch.rand((3, B), generator=torch.Generator().manual_seed(seed))
    s = scale[0] + (scale[1] - scale[0]) * u[0]
    size = (H, W) if crop is None else crop
    assert out[0].shape == (B, 3, *size) and out[1].shape == (B, *size)
    for b in range(B):
        im, lab, cf = _reference(img[b].numpy(), label[b].numpy(),
                                 conf[b].numpy(), s[b].item(), u[1, b].item(),
                                 u[2, b].item(), size)
        np.testing.assert_array_equal(out[1][b].numpy(), lab)
        np.testing.assert_array_equal(out[2][b].numpy(), cf)
        np.testing.assert_allclose(out[0][b].numpy(), im, atol=1e-5)


def test_rescale_identity_and_rng_source():
    img = torch.rand(2, 3, 8, 8)
    lab = torch.randint(0, 3, (2, 8, 8))
    same = random_rescale_crop(img, lab, None, (1., 1.))
    assert same[0] is img and same[1] is lab and same[2] is None
    # torch's global RNG (no Python `random`): reseeding reproduces
    torch.manual_seed(5)
    a = random_rescale_crop(img, lab, None, (0.5, 1.5))
    torch.manual_seed(5)
    b = random_rescale_crop(img, lab, None, (0.5, 1.5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_gaussian_blur_matches_scipy_per_image():
    from scipy.ndimage import gaussian_filter
    g = torch.Generator().manual_seed(1)
    img = torch.rand(3, 2, 20, 17, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.15, 0.6, 1.15], dtype=torch.float64)
    radius = 4  # ceil(3 * 1.15)
    out = gaussian_blur_batch(img, sigma, radius)
    for b in range(3):
        for c in range(2):
            ref = gaussian_filter(img[b, c].numpy(), sigma[b].item(),
                                  mode='nearest',
                                  truncate=radius / sigma[b].item())
            np.testing.assert_allclose(out[b, c].numpy(), ref, atol=1e-10)


def test_photometric_flip_and_blur_probabilities():
    aug = UnsupBatchAugment(blur_prob=0.5, flip_prob=0.5)
    B = 400
    ramp = torch.arange(6.).expand(B, 1, 4, 6).contiguous()
    lab = torch.arange(6).expand(B, 4, 6).contiguous()
    conf = lab.float() / 10.
    torch.manual_seed(0)
    img, lab2, conf2 = aug.photometric(ramp.repeat(1, 3, 1, 1), lab, conf)
    flipped = lab2[:, 0, 0] == 5
    assert torch.equal(lab2[flipped], lab[flipped].flip(-1))
    assert torch.equal(lab2[~flipped], lab[~flipped])
    assert torch.equal(conf2, lab2.float() / 10.)  # aligned with labels
    assert 0.4 < flipped.float().mean() < 0.6
    # blur only touches the image; unblurred + flipped images are exact
    plain = (img - ramp.repeat(1, 3, 1, 1)).abs().flatten(1).amax(1) == 0
    plain |= (img - ramp.flip(-1).repeat(1, 3, 1, 1)).abs().flatten(1) \
        .amax(1) == 0
    assert 0.4 < (~plain).float().mean() < 0.6
    off = UnsupBatchAugment()
    x = torch.rand(2, 3, 4, 4)
    assert off.photometric(x, lab[:2, :, :4])[0] is x


def test_config_validation():
    with pytest.raises(ValueError, match='scale'):
        UnsupBatchAugment(scale=(1.5, 0.5))
    with pytest.raises(ValueError, match='blur_sigma'):
        UnsupBatchAugment(blur_sigma=(0., 1.))
    with pytest.raises(ValueError, match='crop_size'):
        UnsupBatchAugment(crop_size=(0, 4))
    with pytest.raises(KeyError, match='valid'):
        UnsupBatchAugment.build(dict(jitter=0.8))
    with pytest.raises(TypeError, match='dict or None'):
        UnsupBatchAugment.build([0.5, 1.5])
    assert UnsupBatchAugment.build(None) is None
