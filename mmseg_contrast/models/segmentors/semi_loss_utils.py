"""Loss plumbing of :class:`~mmseg_contrast.models.SemiSegmentor`: loss
re-weighting, per-pixel weights for the stock heads, ReCo's unsupervised
weighting, and the split of a concatenated (labelled + unlabelled) forward
back into separate losses."""
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

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


def unsup_weighting(labels: Tensor, conf: Tensor, cfg: dict,
                    ignore_index: int
                    ) -> Tuple[Optional[Tensor], Tensor, Tensor, Tensor,
                               Tensor]:
    """Pixel weights and CE targets of the unsupervised loss.

    ``'ratio'`` (ReCo ``compute_unsupervised_loss``): every pseudo-labelled
    pixel is a target, weighted by the per-image ``eta_b = #(conf_b >=
    strong_threshold) / #(valid pixels of b)``. ``'threshold'``: pixels with
    ``conf < weak_threshold`` are ignored, the others weigh 1.

    Returns:
        tuple: ``(weight or None, ce_labels, eta, valid, confident)``.
    """
    valid = labels != ignore_index
    confident = conf >= cfg['weak_threshold']
    if cfg['unsup_weighting'] == 'ratio':
        B = labels.shape[0]
        n_strong = (conf >= cfg['strong_threshold']).reshape(B, -1).sum(1)
        n_valid = valid.reshape(B, -1).sum(1).clamp(min=1)
        eta = n_strong.float() / n_valid.float()
        weight = eta[:, None, None].expand_as(conf).contiguous()
        return weight, labels, eta, valid, confident
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
