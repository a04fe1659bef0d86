"""Loss plumbing of :class:`~mmseg_contrast.models.SemiSegmentor`: loss
re-weighting, per-pixel weights for the stock heads, ReCo's unsupervised
weighting, and the split of a concatenated (labelled + unlabelled) forward
back into separate losses."""
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

SUP_TAG = '@sup'
UNSUP_TAG = '@unsup'


def reweight_loss_dict(losses: dict, weight: float) -> dict:
    """Multiply every entry whose key contains ``'loss'`` by ``weight``."""
    out = {}
    for k, v in losses.items():
        if 'loss' in k:
            v = [x * weight for x in v] if isinstance(v, list) else v * weight
        out[k] = v
    return out


class PixelWeightSampler:
    """Stands in for a head's ``sampler`` during the unsupervised pass:
    ``BaseDecodeHead.loss_by_feat`` multiplies every pixel's loss by the
    returned ``(B, H, W)`` weight (times the head's own sampler's weight,
    e.g. OHEM, if it has one)."""

    def __init__(self, weight: Tensor, inner=None):
        self.weight = weight
        self.inner = inner

    def sample(self, seg_logit: Tensor, seg_label: Tensor) -> Tensor:
        w = self.weight
        if tuple(w.shape[-2:]) != tuple(seg_label.shape[-2:]):
            raise ValueError(
                f'pixel weights {tuple(w.shape)} do not match the labels '
                f'{tuple(seg_label.shape)}')
        if self.inner is not None:
            w = w * self.inner.sample(seg_logit, seg_label)
        return w


def segmentor_heads(segmentor: nn.Module) -> List[nn.Module]:
    """Decode and auxiliary heads of a stock segmentor (lists flattened)."""
    heads = []
    for name in ('decode_head', 'auxiliary_head'):
        h = getattr(segmentor, name, None)
        if h is None:
            continue
        heads.extend(list(h) if isinstance(h, nn.ModuleList) else [h])
    return heads


@contextmanager
def pixel_weights(segmentor: nn.Module, weight: Optional[Tensor]):
    """Within the block every head of ``segmentor`` weighs its pixel losses
    by ``weight`` (``None``: unchanged)."""
    if weight is None:
        yield
        return
    heads = segmentor_heads(segmentor)
    saved = [h.sampler for h in heads]
    try:
        for h, s in zip(heads, saved):
            h.sampler = PixelWeightSampler(weight, s)
        yield
    finally:
        for h, s in zip(heads, saved):
            h.sampler = s


def class_balanced_mask(labels: Tensor, conf: Tensor, portion: float,
                        threshold: float, ignore_index: int,
                        num_classes: int) -> Tensor:
    """CBST's class-balanced selection (Zou et al., ECCV'18, eq. 9-10),
    per batch: for every pseudo-class ``c`` keep the ``ceil(portion * n_c)``
    most confident of the ``n_c`` pixels labelled ``c``, plus every pixel
    with ``conf >= threshold``. A class the teacher is never sure of still
    gets its best pixels, so a dominant easy class (background) cannot fill
    the whole unsupervised loss. One sort, no host sync.
    """
    flat_l = labels.reshape(-1)
    flat_c = conf.reshape(-1).float()
    valid = flat_l != ignore_index
    cls = torch.where(valid, flat_l, torch.zeros_like(flat_l))
    # one sort by (class, confidence descending); invalid pixels last
    key = cls.double() * 2.0 + (1.0 - flat_c.double().clamp(0, 1))
    key = key.masked_fill(~valid, float('inf'))
    order = torch.argsort(key)
    counts = torch.zeros(num_classes, dtype=torch.long,
                         device=labels.device).scatter_add_(
                             0, cls, valid.long())
    starts = torch.cumsum(counts, 0) - counts
    sorted_cls = cls[order]
    rank = torch.arange(order.numel(), device=labels.device) - \
        starts[sorted_cls]
    quota = torch.ceil(portion * counts.double()).long()
    keep = torch.zeros_like(valid)
    keep[order] = valid[order] & (rank < quota[sorted_cls])
    keep = keep | (valid & (flat_c >= threshold))
    return keep.view_as(labels)


def unsup_weighting(labels: Tensor, conf: Tensor, cfg: dict,
                    ignore_index: int, num_classes: Optional[int] = None
                    ) -> Tuple[Optional[Tensor], Tensor, Tensor, Tensor,
                               Tensor]:
    """Pixel weights and CE targets of the unsupervised loss.

    ``'ratio'`` (ReCo ``compute_unsupervised_loss``): every pseudo-labelled
    pixel is a target, weighted by the per-image ``eta_b = #(conf_b >=
    strong_threshold) / #(valid pixels of b)``. ``'threshold'``: pixels with
    ``conf < weak_threshold`` are ignored, the others weigh 1.
    ``'class_balanced'``: the pixels :func:`class_balanced_mask` selects
    (each pseudo-class's ``class_portion`` most confident, plus every pixel
    with ``conf >= weak_threshold``) weigh 1, the others are ignored.

    Returns:
        tuple: ``(weight or None, ce_labels, eta, valid, confident)``;
        ``confident`` is the selected mask (also ReCo's valid unlabelled
        pixels).
    """
    valid = labels != ignore_index
    if cfg['unsup_weighting'] == 'ratio':
        confident = conf >= cfg['weak_threshold']
        B = labels.shape[0]
        n_strong = (conf >= cfg['strong_threshold']).reshape(B, -1).sum(1)
        n_valid = valid.reshape(B, -1).sum(1).clamp(min=1)
        eta = n_strong.float() / n_valid.float()
        weight = eta[:, None, None].expand_as(conf).contiguous()
        return weight, labels, eta, valid, confident
    if cfg['unsup_weighting'] == 'class_balanced':
        confident = class_balanced_mask(
            labels, conf, cfg['class_portion'], cfg['weak_threshold'],
            ignore_index, num_classes)
    else:
        confident = conf >= cfg['weak_threshold']
    eta = confident.float().flatten(1).mean(1)
    return None, labels.masked_fill(~confident, ignore_index), eta, valid, \
        confident


@contextmanager
def split_head_losses(segmentor: nn.Module, n_sup: int,
                      unsup_weight: Optional[Tensor]):
    """Shared-BN concatenated forward, separate losses.

    Within the block, ``segmentor.loss(cat([x_l, x_u]), samples_l +
    samples_u)`` runs the backbone and every head ONCE on the whole batch
    (so BN statistics are shared, as in a single forward of the
    concatenation), and each head's ``loss_by_feat(seg_logits,
    batch_data_samples)`` is split: the first ``n_sup`` images give the
    supervised losses (key suffix ``'@sup'``), the rest the unsupervised
    ones (suffix ``'@unsup'``, pixel losses weighted by ``unsup_weight``).
    :func:`split_tagged_losses` turns the result into the two dicts.

    Needs heads whose ``loss_by_feat`` takes ``(seg_logits, samples)`` with
    a ``(B, C, H, W)`` logits tensor (every ``BaseDecodeHead`` /
    ``BaseCascadeDecodeHead`` of mmseg except the point / mask heads).
    """
    heads = segmentor_heads(segmentor)

    def make(head):
        orig = head.loss_by_feat  # the bound class method

        def loss_by_feat(seg_logits, batch_data_samples, *args, **kwargs):
            if not isinstance(seg_logits, Tensor) or seg_logits.dim() != 4 \
                    or seg_logits.shape[0] != len(batch_data_samples):
                n = len(batch_data_samples)
                raise TypeError(
                    f'concat_forward: {type(head).__name__}.loss_by_feat '
                    f'must get (B, C, H, W) logits for the {n} '
                    'concatenated images; this head does not: set '
                    'semi_train_cfg.concat_forward=False')
            out = {}
            sup = orig(seg_logits[:n_sup], batch_data_samples[:n_sup], *args,
                       **kwargs)
            out.update({k + SUP_TAG: v for k, v in sup.items()})
            saved = head.sampler
            if unsup_weight is not None:
                head.sampler = PixelWeightSampler(unsup_weight, saved)
            try:
                un = orig(seg_logits[n_sup:], batch_data_samples[n_sup:],
                          *args, **kwargs)
            finally:
                head.sampler = saved
            out.update({k + UNSUP_TAG: v for k, v in un.items()})
            return out

        return loss_by_feat

    try:
        for h in heads:
            h.loss_by_feat = make(h)  # instance attribute shadows the method
        yield
    finally:
        for h in heads:
            h.__dict__.pop('loss_by_feat', None)


def split_tagged_losses(losses: Dict[str, Tensor]
                        ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor],
                                   Dict[str, Tensor]]:
    """``{'decode.loss_ce@sup': a, 'decode.loss_ce@unsup': b, 'x': c}`` ->
    ``({'decode.loss_ce': a}, {'decode.loss_ce': b}, {'x': c})``: the third
    dict holds what a head computed on the whole concatenated batch outside
    ``loss_by_feat`` (e.g. a pixel-contrast head's embedding loss)."""
    sup, un, joint = {}, {}, {}
    for k, v in losses.items():
        if k.endswith(SUP_TAG):
            sup[k[:-len(SUP_TAG)]] = v
        elif k.endswith(UNSUP_TAG):
            un[k[:-len(UNSUP_TAG)]] = v
        else:
            joint[k] = v
    return sup, un, joint
