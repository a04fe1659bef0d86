"""ReCo's augmentation of the pseudo-labelled (unlabelled) batch, batched.

In ``lorenmt/reco`` ``train_semisup.py`` the teacher pseudo-labels the raw
unlabelled crop, then (``build_data.py`` ``batch_transform`` /
``transform``, per image through PIL):

1. **geometric, before mixing** (``apply_augmentation=False``): random
   rescale ``s ~ U(scale)`` (``random.uniform``; VOC and SUN RGB-D
   ``(0.5, 1.5)``, Cityscapes ``(1.0, 1.0)``: none) to
   ``(int(H s), int(W s))``, bilinear for the image, **nearest** for the
   pseudo-label and the confidence; if smaller than the crop, pad at the
   right / bottom: the image with **reflect** padding, the label with 255
   (-> -1, ignore) and the confidence with 0; then a uniform random crop of
   the crop size (the size the unlabelled loader produced);
2. ClassMix / CutMix / CutOut (:mod:`.mixing`);
3. **photometric, after mixing** (``apply_augmentation=True``, scale 1, so
   resize / pad / crop are no-ops): colour jitter with p = 0.8
   (brightness, contrast, saturation in (0.75, 1.25), hue in (-0.25, 0.25)),
   Gaussian blur with p = 0.5 and PIL radius (= sigma) ``U(0.15, 1.15)``,
   horizontal flip with p = 0.5 of the image, the label and the confidence.

:class:`UnsupBatchAugment` does steps 1 and 3 for the whole batch at once
(one ``grid_sample`` / one gather / one grouped convolution; no loop over
images or pixels, no host sync), with the random numbers drawn from torch's
global RNG of the batch's device (or a passed ``torch.Generator``), never
from Python's ``random``:

* the rescale + pad + crop is one output-to-source map per image: output
  row ``y`` is row ``r = y + i0`` of the padded, resized image; rows
  ``r >= int(H s)`` are padding (label ignore, confidence 0; image reflected
  back into the resized image, the same triangle-wave index numpy's
  ``'reflect'`` pad produces for any pad width); the image is sampled
  bilinearly at the source point ``(r + 0.5) H / int(H s) - 0.5`` and the
  label / confidence at the nearest source pixel
  ``floor((r + 0.5) H / int(H s))`` (PIL's NEAREST, computed exactly;
  PIL's 16.16 fixed point may round exact ties down); likewise for columns;
* the blur is a separable Gaussian with a per-image sigma (kernel radius
  ``ceil(3 sigma_max)``, replicated border like PIL's box-blur
  approximation); blur is linear, so it is applied to the normalised image;
* the flip is a per-image ``torch.where`` on the image, label and confidence.

Deliberate differences from the reference: no colour jitter here (the
configs' ``StrongView`` photometric jitter runs before mixing, per source
image); no PIL uint8 round trip (the reference quantises images and
confidences to 1/255); bilinear resampling without PIL's antialiasing
filter when shrinking (as mmseg's own ``Resize``); PIL's Gaussian blur is an
extended-box approximation of the exact Gaussian used here.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...options import (
    OptionTypeError,
    check_positive,
    check_positive_int,
    check_probability,
)
from .mixing import _rand

_OWNER = 'UnsupBatchAugment'
UNSUP_AUG_KEYS = ('scale', 'crop_size', 'blur_prob', 'blur_sigma',
                  'flip_prob')


def reflect_index(r: Tensor, n: Tensor) -> Tensor:
    """numpy ``'reflect'`` padding index: position ``r >= 0`` of a line of
    length ``n`` extended by reflection (edge not repeated), any pad width.
    """
    period = (2 * (n - 1)).clamp(min=1)
    m = torch.remainder(r, period)
    out = torch.where(m < n, m, period - m)
    return torch.where(n > 1, out, torch.zeros_like(out))


def _axis_map(u_scale: Tensor, u_off: Tensor, size: int, out: int
              ) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-image source coordinates along one axis.

    Returns:
        tuple: ``(src, idx, inside)``, each (B, out): continuous source
        coordinate for the image, nearest source index for the label and
        whether the output position lies inside the resized image.
    """
    resized = (size * u_scale).floor().clamp(min=1).long()  # int(H * s)
    padded = resized.clamp(min=out)
    off = (u_off * (padded - out + 1)).floor().long()
    r = torch.arange(out, device=u_scale.device)[None] + off[:, None]
    n = resized[:, None]
    inside = r < n
    r_img = reflect_index(r, n).to(u_scale.dtype)
    ratio = size / n.to(u_scale.dtype)
    src = (r_img + 0.5) * ratio - 0.5
    # floor((r + 0.5) * size / n) in exact integer arithmetic
    idx = torch.div((2 * r + 1) * size, 2 * n,
                    rounding_mode='floor').clamp(0, size - 1)
    return src, idx, inside


def random_rescale_crop(img: Tensor,
                        label: Tensor,
                        conf: Optional[Tensor],
                        scale: Sequence[float] = (0.5, 1.5),
                        crop_size: Optional[Sequence[int]] = None,
                        ignore_index: int = 255,
                        generator: Optional[torch.Generator] = None):
    """ReCo's random rescale + pad + crop of ``(img, label, conf)``.

    Args:
        img (Tensor): (B, C, H, W) float images (any normalisation).
        label (Tensor): (B, H, W) long pseudo-labels.
        conf (Tensor, optional): (B, H, W) confidences.
        scale (tuple): ``(lo, hi)`` of the uniform scale factor.
        crop_size (tuple, optional): output ``(h, w)``; default ``(H, W)``.
        generator (torch.Generator, optional): on ``img``'s device (else a
            ``ValueError``).

    Returns:
        tuple: ``(img, label, conf)`` of size ``crop_size``; padded pixels
        have label ``ignore_index`` and confidence 0.
    """
    B, _, H, W = img.shape
    lo, hi = float(scale[0]), float(scale[1])
    out_h, out_w = (H, W) if crop_size is None else map(int, crop_size)
    if lo == hi == 1. and (out_h, out_w) == (H, W):
        return img, label, conf
    u = _rand((3, B), img.device, generator, _OWNER)
    s = lo + (hi - lo) * u[0]
    ys, iy, in_y = _axis_map(s, u[1], H, out_h)
    xs, ix, in_x = _axis_map(s, u[2], W, out_w)
    grid = torch.stack(
        torch.broadcast_tensors(((2 * xs + 1) / W - 1)[:, None, :],
                                ((2 * ys + 1) / H - 1)[:, :, None]), -1)
    out_img = F.grid_sample(
        img, grid.to(img.dtype), mode='bilinear', padding_mode='border',
        align_corners=False)
    flat = (iy[:, :, None] * W + ix[:, None, :]).reshape(B, -1)
    inside = in_y[:, :, None] & in_x[:, None, :]
    out_label = label.reshape(B, -1).gather(1, flat).reshape(
        B, out_h, out_w).masked_fill(~inside, ignore_index)
    out_conf = None
    if conf is not None:
        out_conf = conf.reshape(B, -1).gather(1, flat).reshape(
            B, out_h, out_w).masked_fill(~inside, 0.)
    return out_img, out_label, out_conf


def gaussian_blur_batch(img: Tensor, sigma: Tensor, radius: int) -> Tensor:
    """Separable Gaussian blur with one sigma per image (replicate border).

    Args:
        img (Tensor): (B, C, H, W).
        sigma (Tensor): (B, ) positive standard deviations (pixels).
        radius (int): kernel half-width (``ceil(3 * max sigma)``).
    """
    B, C, H, W = img.shape
    x = torch.arange(-radius, radius + 1, device=img.device,
                     dtype=img.dtype)
    k = torch.exp(-x[None] ** 2 / (2 * sigma.to(img.dtype)[:, None] ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(C, 0)  # (B*C, K)
    y = F.pad(img.reshape(1, B * C, H, W), (radius, ) * 4, mode='replicate')
    y = F.conv2d(y, k[:, None, :, None], groups=B * C)
    y = F.conv2d(y, k[:, None, None, :], groups=B * C)
    return y.reshape(B, C, H, W)


def _check_pair(name: str, pair, check, ordered: bool = True) -> None:
    """``pair`` is a 2-tuple / list whose entries pass ``check`` (and
    ``pair[0] <= pair[1]`` when ``ordered``); the error names
    ``unsup_aug.<name>``."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise OptionTypeError(f'{_OWNER}: unsup_aug.{name}={pair!r} is '
                              'invalid; it must be a pair (tuple of 2)')
    for i, v in enumerate(pair):
        check(_OWNER, f'unsup_aug.{name}[{i}]', v)
    if ordered and pair[0] > pair[1]:
        raise ValueError(f'{_OWNER}: unsup_aug.{name}={tuple(pair)!r} is '
                         'invalid; it must be (lo, hi) with lo <= hi')


class UnsupBatchAugment:
    """ReCo's augmentation of the pseudo-labelled batch (see the module
    docstring): :meth:`geometric` before mixing, :meth:`photometric` after.

    Built by ``SemiSegmentor`` from ``semi_train_cfg.unsup_aug``, e.g. the
    VOC / SUN RGB-D setting::

        unsup_aug=dict(scale=(0.5, 1.5), blur_prob=0.5,
                       blur_sigma=(0.15, 1.15), flip_prob=0.5)

    Args (checked when built, :mod:`mmseg_contrast.options`):
        scale (tuple): range ``(lo, hi)`` of the random rescale factor,
            finite, ``0 < lo <= hi``; ``(1.0, 1.0)`` (default) disables it.
        crop_size (tuple, optional): output size ``(h, w)`` of the crop,
            ints >= 1; default: the size of the batch (the reference crops
            back to the unlabelled crop size).
        blur_prob (float): probability of blurring an image, in [0, 1]
            (0: off). Default 0.
        blur_sigma (tuple): range ``(lo, hi)`` of the blur's standard
            deviation, finite, ``0 < lo <= hi``.
        flip_prob (float): probability of flipping an image (with its
            pseudo-label and confidence) horizontally, in [0, 1] (0: off).
            Default 0 (a flip is wrong for data whose classes depend on the
            side, e.g. brain hemispheres).
    """

    def __init__(self,
                 scale: Sequence[float] = (1., 1.),
                 crop_size: Optional[Sequence[int]] = None,
                 blur_prob: float = 0.,
                 blur_sigma: Sequence[float] = (0.15, 1.15),
                 flip_prob: float = 0.):
        _check_pair('scale', scale, check_positive)
        if crop_size is not None:
            _check_pair('crop_size', crop_size, check_positive_int, False)
        for name, p in (('blur_prob', blur_prob), ('flip_prob', flip_prob)):
            check_probability(_OWNER, f'unsup_aug.{name}', p, zero_ok=True,
                              hint='0 switches it off')
        _check_pair('blur_sigma', blur_sigma, check_positive)
        self.scale = tuple(float(s) for s in scale)
        self.crop_size = None if crop_size is None else tuple(crop_size)
        self.blur_prob = float(blur_prob)
        self.blur_sigma = tuple(float(s) for s in blur_sigma)
        self.flip_prob = float(flip_prob)
        self.blur_radius = int(math.ceil(3 * self.blur_sigma[1]))

    @classmethod
    def build(cls, cfg: Optional[dict]) -> Optional['UnsupBatchAugment']:
        """``None`` -> ``None`` (off); a dict -> an instance."""
        if cfg is None:
            return None
        if not isinstance(cfg, dict):
            raise TypeError(f'semi_train_cfg.unsup_aug must be a dict or '
                            f'None, got {type(cfg).__name__}')
        unknown = set(cfg) - set(UNSUP_AUG_KEYS)
        if unknown:
            raise KeyError(f'unknown semi_train_cfg.unsup_aug keys '
                           f'{sorted(unknown)}; valid: {list(UNSUP_AUG_KEYS)}')
        return cls(**cfg)

    def geometric(self, img, label, conf=None, ignore_index=255,
                  generator=None):
        """Random rescale + pad + crop (before mixing)."""
        return random_rescale_crop(img, label, conf, self.scale,
                                   self.crop_size, ignore_index, generator)

    def photometric(self, img, label, conf=None, generator=None):
        """Gaussian blur (image only) and horizontal flip (image, label and
        confidence), per image (after mixing)."""
        if self.blur_prob == 0. and self.flip_prob == 0.:
            return img, label, conf
        B = img.shape[0]
        u = _rand((3, B), img.device, generator, _OWNER)
        if self.blur_prob > 0.:
            lo, hi = self.blur_sigma
            blurred = gaussian_blur_batch(img, lo + (hi - lo) * u[1],
                                          self.blur_radius)
            img = torch.where((u[0] < self.blur_prob)[:, None, None, None],
                              blurred, img)
        if self.flip_prob > 0.:
            flip = u[2] < self.flip_prob
            img = torch.where(flip[:, None, None, None], img.flip(-1), img)
            label = torch.where(flip[:, None, None], label.flip(-1), label)
            if conf is not None:
                conf = torch.where(flip[:, None, None], conf.flip(-1), conf)
        return img, label, conf

    def __repr__(self):
        return (f'{type(self).__name__}(scale={self.scale}, crop_size='
                f'{self.crop_size}, blur_prob={self.blur_prob}, blur_sigma='
                f'{self.blur_sigma}, flip_prob={self.flip_prob})')
