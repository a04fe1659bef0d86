"""Batch-level strong augmentation for unlabelled images and pseudo-labels.

ClassMix, CutMix and CutOut following ReCo's ``generate_unsup_data``
(``lorenmt/reco`` ``module_list.py`` L223-275), vectorised over the batch
(no Python loop over images, classes or pixels, no host sync; a
``generator`` must live on the images' device, else one ``ValueError``):

* the mixing partner of image ``i`` is image ``(i + 1) mod B`` (ReCo's cyclic
  shift; ``torch.roll(x, -1, 0)``);
* **ClassMix**: choose ``floor(n / 2)`` of the ``n`` classes present in the
  pseudo-label of image ``i`` (uniformly, without replacement); the mixing mask
  ``M`` is 1 where the pseudo-label of image ``i`` is a chosen class, and
  ``x~ = M * x_i + (1 - M) * x_{i+1}`` for the image, the pseudo-label and the
  confidence alike. With ``n = 1`` nothing is chosen and the whole image comes
  from the partner (as in ReCo).
  Difference from the reference: ReCo lets the padding value (-1) count as a
  "class" (its ``torch.unique`` sees it); here ignored pixels are never a
  class to pick, unless ``count_ignore_as_class=True`` restores the
  reference behaviour.
* **CutMix**: a box of width ``w ~ U{floor(W/2)+1, ..., W-1}`` and height
  ``round(H * W / 2 / w)`` (area ~ ``HW/2``), top-left uniform inside the
  image; ``M`` is 0 inside the box, so the box content comes from the
  partner ``(i + 1) mod B``.
* **CutOut**: the same box; the image inside it is multiplied by 0 (zero in
  normalised space), the label there is set to ``ignore_index`` and the
  confidence to 0.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from ...options import check_bool
from .device_utils import check_generator

MIX_MODES = ('classmix', 'cutmix', 'cutout', 'none')


def _rand(shape, device, generator=None, owner='mix_batch') -> Tensor:
    """Uniforms drawn on ``device`` (never on the CPU and copied: that
    would be a host round trip and another random stream); a generator on
    another device raises one ``ValueError`` naming ``owner``."""
    check_generator(owner, generator, device)
    return torch.rand(shape, generator=generator, device=device)


def box_masks(batch_size: int,
              height: int,
              width: int,
              device='cpu',
              generator: Optional[torch.Generator] = None) -> Tensor:
    """ReCo ``generate_cutout_mask(ratio=2)`` for a whole batch.

    Returns:
        Tensor: (B, H, W) float mask, 0 inside the box and 1 outside.
    """
    if height < 1 or width < 1:
        raise ValueError(f'box_masks needs a positive image size, got '
                         f'{height}x{width}')
    u = _rand((3, batch_size), device, generator)
    lo = min(width // 2 + 1, width)  # np.random.randint(W / 2 + 1, W)
    hi = max(width, lo + 1)
    w = (lo + (u[0] * (hi - lo)).floor()).clamp(max=width)
    h = torch.round(height * width / 2. / w).clamp(1, height)
    x0 = (u[1] * (width - w + 1)).floor()
    y0 = (u[2] * (height - h + 1)).floor()
    xs = torch.arange(width, device=device, dtype=w.dtype)
    ys = torch.arange(height, device=device, dtype=w.dtype)
    in_x = (xs[None] >= x0[:, None]) & (xs[None] < (x0 + w)[:, None])
    in_y = (ys[None] >= y0[:, None]) & (ys[None] < (y0 + h)[:, None])
    inside = in_y[:, :, None] & in_x[:, None, :]
    return (~inside).float()


def classmix_masks(labels: Tensor,
                   num_classes: int,
                   ignore_index: int = 255,
                   count_ignore_as_class: bool = False,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """ClassMix masks: 1 where ``labels[i]`` is one of ``floor(n_i / 2)``
    randomly chosen classes present in image ``i``.

    Args:
        labels (Tensor): (B, H, W) long (pseudo-)labels.
        num_classes (int): number of real classes ``C``; labels outside
            ``[0, C)`` are treated as ignore.

    Returns:
        Tensor: (B, H, W) float mask.
    """
    if labels.dim() != 3:
        raise ValueError(f'classmix_masks expects (B, H, W) labels, got shape '
                         f'{tuple(labels.shape)}')
    B = labels.shape[0]
    flat = labels.reshape(B, -1).long()
    valid = (flat >= 0) & (flat < num_classes) & (flat != ignore_index)
    # slot C collects every ignored / out-of-range pixel
    slot = torch.where(valid, flat, torch.full_like(flat, num_classes))
    present = torch.zeros(B, num_classes + 1, device=labels.device,
                          dtype=torch.bool)
    present.scatter_(1, slot, True)
    if not count_ignore_as_class:
        present[:, num_classes] = False
    n_present = present.sum(1, keepdim=True)
    # random ranking of the present classes (absent ones sorted last)
    scores = _rand(present.shape, labels.device, generator)
    scores = scores.masked_fill(~present, 2.)
    rank = scores.argsort(1).argsort(1)
    chosen = present & (rank < torch.div(n_present, 2, rounding_mode='floor'))
    return chosen.gather(1, slot).reshape(labels.shape).float()


def mix_batch(mode: str,
              img: Tensor,
              label: Tensor,
              conf: Optional[Tensor] = None,
              num_classes: Optional[int] = None,
              ignore_index: int = 255,
              count_ignore_as_class: bool = False,
              generator: Optional[torch.Generator] = None
              ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Apply ReCo's ``generate_unsup_data`` to a batch.

    Args:
        mode (str): 'classmix' | 'cutmix' | 'cutout' | 'none'.
        img (Tensor): (B, C, H, W) normalised images.
        label (Tensor): (B, H, W) long pseudo-labels.
        conf (Tensor, optional): (B, H, W) confidences.
        num_classes (int): number of classes (needed by ClassMix).

    Returns:
        tuple: mixed ``(img, label, conf)``.
    """
    if mode not in MIX_MODES:
        raise ValueError(f'unknown mixing mode {mode!r}; expected one of '
                         f'{MIX_MODES}')
    if img.dim() != 4 or label.shape != (img.shape[0], *img.shape[2:]):
        raise ValueError(
            f'mix_batch expects img (B, C, H, W) and label (B, H, W) of the '
            f'same batch and size, got {tuple(img.shape)} and '
            f'{tuple(label.shape)}')
    if conf is not None and conf.shape != label.shape:
        raise ValueError(f'conf shape {tuple(conf.shape)} differs from label '
                         f'shape {tuple(label.shape)}')
    if mode == 'none':
        return img, label, conf
    B, _, H, W = img.shape
    if mode == 'classmix':
        if num_classes is None:
            raise ValueError('ClassMix needs num_classes')
        mask = classmix_masks(label, num_classes, ignore_index,
                              count_ignore_as_class, generator)
    else:
        mask = box_masks(B, H, W, img.device, generator)
    if mode == 'cutout':
        keep = mask.bool()
        img = img * mask[:, None].to(img.dtype)
        label = label.masked_fill(~keep, ignore_index)
        if conf is not None:
            conf = conf.masked_fill(~keep, 0.)
        return img, label, conf
    keep = mask.bool()
    img = torch.where(keep[:, None], img, img.roll(-1, 0))
    label = torch.where(keep, label, label.roll(-1, 0))
    if conf is not None:
        conf = torch.where(keep, conf, conf.roll(-1, 0))
    return img, label, conf


class BatchMixer:
    """Configurable wrapper around :func:`mix_batch`.

    Args:
        mode (str): 'classmix' (default, ReCo + ClassMix), 'cutmix',
            'cutout' or 'none'.
        count_ignore_as_class (bool): reproduce ReCo's quirk of letting the
            ignore value count as a ClassMix class (a bool, checked when
            built). Defaults to False.
    """

    def __init__(self, mode: str = 'classmix',
                 count_ignore_as_class: bool = False):
        if mode not in MIX_MODES:
            raise ValueError(f'unknown mixing mode {mode!r}; expected one of '
                             f'{MIX_MODES}')
        check_bool(type(self).__name__, 'count_ignore_as_class',
                   count_ignore_as_class,
                   hint='set by semi_train_cfg.count_ignore_as_class')
        self.mode = mode
        self.count_ignore_as_class = count_ignore_as_class

    def __call__(self, img, label, conf=None, num_classes=None,
                 ignore_index=255, generator=None):
        return mix_batch(self.mode, img, label, conf, num_classes,
                         ignore_index, self.count_ignore_as_class, generator)

    def __repr__(self):
        return f'{type(self).__name__}(mode={self.mode!r})'
