"""ReCo regional contrastive loss (Liu et al., "Bootstrapping Semantic
Segmentation with Regional Contrast", ICLR 2022), vectorised.

Reference: ``lorenmt/reco`` ``module_list.compute_reco_loss`` and
``negative_index_sampler`` (HEAD 71c1b73). Same semantics, same sampling
distributions; different random streams (the reference mixes the global
torch CPU, CUDA and NumPy generators), so values agree with the reference in
distribution, and exactly where sampling cannot change the result.

Precision: the class prototypes (sums of the representation over a class's
pixels), the similarities and the cross-entropy are computed in fp32 with
autocast off, whatever the input dtype and the caller's autocast (an fp16
sum over the ~40k pixels of a class passes 65504). The loss is an fp32
scalar.

Host syncs: ONE per forward + backward (the ``.tolist()`` in
:meth:`ReCoLoss.sample` that reads the input checks and the number of
classes with hard queries); the backward and :meth:`ReCoLoss.
loss_from_samples` have none.
"""
from typing import NamedTuple, Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from ..utils.device_utils import check_generator, fp32_region
from .option_checks import check_reco_loss_options
from .reco_ops import _GatherDot, _uniform_index

__all__ = ['ReCoLoss', 'ReCoSamples']


class ReCoSamples(NamedTuple):
    """What :meth:`ReCoLoss.sample` draws (all detached, on rep's device).

    ``A`` = number of classes with hard queries (only when >= 2 classes are
    present), pixel indices are row-major over ``(B, h, w)``.
    """
    classes: Tensor              # (A,) class ids with hard queries, ascending
    num_present: Tensor          # () number of present classes K
    prototypes: Tensor           # (C, D) float32 mean raw feature per class
    negative_class_prob: Tensor  # (A, C) softmax over other present classes
    query_index: Tensor          # (A, Q) pixel index of each query
    negative_class: Tensor       # (A, Q, N) class of each negative
    negative_index: Tensor       # (A, Q, N) pixel index of each negative


@MODELS.register_module()
class ReCoLoss(nn.Module):
    r"""ReCo regional contrastive loss with active query and key sampling.

    ``value = loss(rep, seg_label, prob, generator=None)``

    Args of ``forward``:
        rep (Tensor): ``(B, D, h, w)`` raw representation (not normalised;
            cosine similarities are taken inside).
        seg_label (Tensor): ``(B, h, w)`` long labels at ``rep``'s
            resolution; ``ignore_index`` marks invalid pixels (the caller
            downsamples with nearest and sets low-confidence pseudo-labels
            to ``ignore_index``).
        prob (Tensor): ``(B, C, h, w)`` softmax probabilities of the
            segmentation head (used without gradient).
        generator (torch.Generator, optional): drives all sampling (must
            live on ``rep``'s device). Same generator state => same samples.

    Formula. Let :math:`\mathcal{C}` be the classes present among the valid
    pixels (:math:`K = |\mathcal{C}|`), :math:`\bar r_c` the mean of the *raw*
    features of all valid pixels of class :math:`c` (prototype, detached),
    :math:`\cos(x, y) = x^\top y / (\max(\|x\|, \epsilon)\max(\|y\|,
    \epsilon))`, :math:`\epsilon = 10^{-8}` (``F.cosine_similarity``), and
    :math:`\tau` the temperature. For every class :math:`c` with at least
    one hard pixel (valid, label :math:`c`, :math:`p_c <` ``strong_threshold``)
    draw ``num_queries`` queries :math:`r_q` uniformly with replacement from
    its hard pixels; for each query draw ``num_negatives`` negative classes
    i.i.d. from :math:`\mathrm{softmax}_{j \in \mathcal{C}\setminus\{c\}}
    (\cos(\bar r_c, \bar r_j) / \tau)` and, for each, one pixel uniformly
    from that class's valid pixels (:math:`r^-_{q,n}`). Then

    .. math::

        \mathcal{L} = \frac{w}{K} \sum_{c\,:\,\mathrm{hard}_c \neq \emptyset}
        \frac{1}{Q} \sum_{q} -\log
        \frac{e^{\cos(r_q, \bar r_c)/\tau}}
        {e^{\cos(r_q, \bar r_c)/\tau} + \sum_{n=1}^{N}
        e^{\cos(r_q, r^-_{q,n})/\tau}}

    i.e. a per-class cross-entropy with the positive at index 0, summed over
    the classes that have hard queries and divided by the number of present
    classes (classes without hard queries still count in :math:`K`), as in
    the reference. Only the queries receive gradient (prototypes and
    negatives are detached, issue #30). Class order, the rotated negative
    class list and the grouping of negatives by class in the reference do not
    affect the value.

    Differences from the reference (bugs fixed):

    * fewer than two present classes (or no hard pixel at all) returns a
      zero that is connected to ``rep``'s graph, on ``rep``'s device
      (the reference returns a graph-less CPU ``tensor(0.)``, which leaves
      parameters unused under DDP, issue #27);
    * no Python loop over queries or negative classes and no NumPy sampling
      (the reference's ``negative_index_sampler`` makes ``Q * (K - 1)`` NumPy
      calls per class, issue #11); all present classes are processed in one
      batch, with one device-to-host sync per call (one ``.tolist()`` of
      the input checks and of the number of classes with hard queries,
      which are then compacted by a stable sort, not ``nonzero``);
    * sampling uses one injectable ``torch.Generator`` so it is reproducible;
    * labels are long class indices with ``ignore_index`` instead of a
      one-hot tensor plus a float mask;
    * the prototypes (sums over pixels), the similarity and the
      cross-entropy are computed in float32 with autocast off, whatever the
      input dtype or the caller's autocast (fp16 / bf16 safe: an fp16
      prototype sum overflows on Cityscapes- and VOC-sized batches);
    * label values outside ``[0, C)`` (other than ``ignore_index``) raise a
      ``ValueError`` instead of silently indexing another class;
    * NaN / Inf in ``rep`` raise a ``FloatingPointError`` with the fix
      (checked on the prototypes, in the same host sync), instead of
      torch's ``invalid multinomial distribution``.

    Args (checked when built, :mod:`mmseg_contrast.options`):
        temperature (float): :math:`\tau` of both the negative-class
            softmax and the InfoNCE; finite, > 0. Default 0.5.
        num_queries (int): queries per class (with replacement), >= 1.
            Default 256.
        num_negatives (int): negative keys per query, >= 1. Default 512.
        strong_threshold (float): a valid pixel is a hard query when the
            probability of its own label is strictly below it; in (0, 1]
            (1: about every pixel). Default 0.97.
        ignore_index (int): label of invalid pixels. Default 255.
        loss_weight (float): :math:`w`, finite, >= 0. Default 1.0.
        loss_name (str): key of the loss in the loss dict; must contain
            ``'loss'`` to be summed by mmengine. Default ``'loss_reco'``.
        eps (float): cosine-similarity epsilon, finite, > 0. Default 1e-8.
        max_chunk_elements (int, optional): upper bound (>= 1) on the
            elements of the reused gathered-key buffer of the forward.
            Default ``None``: 2**22 on CPU (cache friendly), 2**26 on CUDA.
    """

    def __init__(self,
                 temperature: float = 0.5,
                 num_queries: int = 256,
                 num_negatives: int = 512,
                 strong_threshold: float = 0.97,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_reco',
                 eps: float = 1e-8,
                 max_chunk_elements: Optional[int] = None):
        super().__init__()
        check_reco_loss_options(type(self).__name__, temperature, num_queries,
                                num_negatives, strong_threshold, ignore_index,
                                loss_weight, eps, max_chunk_elements)
        self.temperature = float(temperature)
        self.num_queries = int(num_queries)
        self.num_negatives = int(num_negatives)
        self.strong_threshold = float(strong_threshold)
        self.ignore_index = int(ignore_index)
        self.loss_weight = float(loss_weight)
        self.eps = float(eps)
        self.max_chunk_elements = (None if max_chunk_elements is None else
                                   int(max_chunk_elements))
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'temperature={self.temperature}, '
                f'num_queries={self.num_queries}, '
                f'num_negatives={self.num_negatives}, '
                f'strong_threshold={self.strong_threshold}, '
                f'ignore_index={self.ignore_index}, '
                f'loss_weight={self.loss_weight}')

    # ------------------------------------------------------------------ #
    def _check_inputs(self, rep: Tensor, seg_label: Tensor, prob: Tensor):
        if not (isinstance(rep, Tensor) and rep.dim() == 4):
            raise ValueError(f'ReCoLoss: rep must be a (B, D, h, w) tensor, '
                             f'got {getattr(rep, "shape", type(rep))}')
        B, _, h, w = rep.shape
        if not (isinstance(seg_label, Tensor)
                and tuple(seg_label.shape) == (B, h, w)):
            raise ValueError(
                f'ReCoLoss: seg_label must have shape (B, h, w) = '
                f'{(B, h, w)} matching rep {tuple(rep.shape)}, got '
                f'{tuple(getattr(seg_label, "shape", ()))} (downsample the '
                f'labels to the representation resolution with nearest)')
        if seg_label.dtype.is_floating_point or seg_label.dtype == torch.bool:
            raise ValueError(f'ReCoLoss: seg_label must be an integer tensor, '
                             f'got {seg_label.dtype}')
        if not (isinstance(prob, Tensor) and prob.dim() == 4
                and prob.shape[0] == B and tuple(prob.shape[2:]) == (h, w)):
            raise ValueError(
                f'ReCoLoss: prob must have shape (B, C, h, w) with (B, h, w) '
                f'= {(B, h, w)}, got {tuple(getattr(prob, "shape", ()))}')
        if prob.device != rep.device or seg_label.device != rep.device:
            raise ValueError(
                f'ReCoLoss: rep, seg_label and prob must be on one device, '
                f'got {rep.device}, {seg_label.device}, {prob.device}')

    def forward(self,
                rep: Tensor,
                seg_label: Tensor,
                prob: Tensor,
                generator: Optional[torch.Generator] = None) -> Tensor:
        samples = self.sample(rep, seg_label, prob, generator=generator)
        return self.loss_from_samples(rep, samples)

    @torch.no_grad()
    def sample(self,
               rep: Tensor,
               seg_label: Tensor,
               prob: Tensor,
               generator: Optional[torch.Generator] = None) -> ReCoSamples:
        """Class statistics and all random draws of one loss evaluation.

        Pixels are indexed row-major over ``(B, h, w)``. Everything returned
        is detached; :meth:`loss_from_samples` turns it into the loss, so
        the sampling can be inspected or replaced from outside. Statistics
        in fp32 with autocast off; the loss's one host sync.
        """
        self._check_inputs(rep, seg_label, prob)
        device = rep.device
        check_generator('ReCoLoss', generator, device)
        with fp32_region(device):
            return self._sample(rep, seg_label, prob, generator)

    def _sample(self, rep: Tensor, seg_label: Tensor, prob: Tensor,
                generator: Optional[torch.Generator]) -> ReCoSamples:
        B, D, h, w = rep.shape
        C = prob.shape[1]
        Q, N = self.num_queries, self.num_negatives
        device = rep.device
        lab = seg_label.reshape(-1).long()                          # (P,)
        valid = lab != self.ignore_index
        bad = (valid & ((lab < 0) | (lab >= C))).any()
        lab_c = torch.where(valid, lab, torch.full_like(lab, C))
        lab_c = lab_c.clamp(0, C)                       # C = "no class"
        # probability of each pixel's own label, (P,)
        own = prob.detach().float().gather(
            1, lab_c.clamp(max=C - 1).view(B, 1, h, w)).reshape(-1)
        hard = valid & (own < self.strong_threshold)
        lab_h = torch.where(hard, lab_c, torch.full_like(lab_c, C))

        ones = torch.ones_like(lab_c)
        n_valid = torch.zeros(C + 1, dtype=torch.long,
                              device=device).scatter_add_(0, lab_c,
                                                          ones)[:C]  # (C,)
        n_hard = torch.zeros(C + 1, dtype=torch.long,
                             device=device).scatter_add_(0, lab_h, ones)[:C]
        present = n_valid > 0
        num_present = present.sum()
        active = present & (n_hard > 0) & (num_present > 1)

        R32 = rep.detach().permute(0, 2, 3, 1).reshape(-1, D).float()
        # prototypes: mean raw feature of all valid pixels of the class;
        # one-hot matmul (deterministic, unlike index_add_ on CUDA)
        onehot = torch.zeros(
            R32.shape[0], C + 1, dtype=R32.dtype,
            device=device).scatter_(1, lab_c.unsqueeze(1), 1.0)
        sums = onehot[:, :C].t() @ R32                              # (C, D)
        protos = sums / n_valid.clamp(min=1).unsqueeze(1).to(R32.dtype)
        # any NaN / Inf in rep reaches the prototypes (0 * NaN = NaN)
        nonfinite = ~torch.isfinite(protos).all()
        # The single device->host sync: input checks + number of active
        # classes.
        n_bad, n_nonfinite, A = torch.stack(
            [bad.long(), nonfinite.long(), active.sum()]).tolist()
        if n_bad:
            raise ValueError(
                f'ReCoLoss: seg_label has values outside [0, {C}) that are '
                f'not ignore_index={self.ignore_index} (C = prob.shape[1])')
        if n_nonfinite:
            raise FloatingPointError(
                f'ReCoLoss: the representation (rep, shape '
                f'{tuple(rep.shape)}) holds NaN or Inf: training diverged '
                f'before the ReCo term (it would fail as an "invalid '
                f'multinomial distribution"). Lower the learning '
                f"rate (optim_wrapper.optimizer.lr), add gradient clipping "
                f'(optim_wrapper.clip_grad=dict(max_norm=...)), or use a '
                f'dynamic loss scale with fp16 (AmpOptimWrapper); check the '
                f'input images for NaN.')
        # active class ids ascending, without nonzero(): a stable sort puts
        # them first (no shape read from the device)
        act = torch.argsort((~active).to(torch.int32), stable=True)[:A]
        protos_n = protos / protos.norm(dim=1, keepdim=True).clamp(
            min=self.eps)

        # negative-class distribution per active class:
        # softmax over the other present classes of cos(proto_c, proto_j)/tau
        sim = protos_n[act] @ protos_n.t() / self.temperature       # (A, C)
        allowed = present.unsqueeze(0).expand(A, C).clone()
        allowed[torch.arange(A, device=device), act] = False
        neg_prob = torch.softmax(sim.masked_fill(~allowed, float('-inf')),
                                 dim=1)
        if A > 0:
            # >= 2 draws: torch's single-draw path checks the distribution
            # on the host
            neg_cls = torch.multinomial(
                neg_prob, max(Q * N, 2), replacement=True,
                generator=generator)[:, :Q * N].reshape(A, Q, N)
        else:
            neg_cls = torch.zeros(0, Q, N, dtype=torch.long, device=device)

        # pixels grouped by class (row-major within a class)
        order_v = torch.argsort(lab_c, stable=True)
        off_v = torch.cumsum(n_valid, 0) - n_valid
        order_h = torch.argsort(lab_h, stable=True)
        off_h = torch.cumsum(n_hard, 0) - n_hard
        # hard queries: uniform with replacement among the hard pixels
        q_pos = _uniform_index(off_h[act].unsqueeze(1),
                               n_hard[act].unsqueeze(1), (A, Q), generator)
        query_index = order_h[q_pos]                                # (A, Q)
        # negatives: uniform with replacement among the class's valid pixels
        n_pos = _uniform_index(off_v[neg_cls], n_valid[neg_cls], (A, Q, N),
                               generator)
        negative_index = order_v[n_pos]                             # (A, Q, N)
        return ReCoSamples(
            classes=act,
            num_present=num_present,
            prototypes=protos,
            negative_class_prob=neg_prob,
            query_index=query_index,
            negative_class=neg_cls,
            negative_index=negative_index)

    def loss_from_samples(self, rep: Tensor, samples: ReCoSamples) -> Tensor:
        """The (weighted) loss for given samples; gradient flows to ``rep``
        through the queries only. fp32 with autocast off; no host sync."""
        with fp32_region(rep.device):
            return self._loss_from_samples(rep, samples)

    def _loss_from_samples(self, rep: Tensor, samples: ReCoSamples) -> Tensor:
        D = rep.shape[1]
        Q, N = self.num_queries, self.num_negatives
        # graph-connected zero on rep's device (keeps DDP happy); one element
        # suffices and cannot overflow in fp16 like rep.sum() would
        zero = rep.reshape(-1)[:1].float().sum() * 0.0
        act = samples.classes
        if act.numel() == 0:
            return zero
        R = rep.permute(0, 2, 3, 1).reshape(-1, D)                  # (P, D)
        with torch.no_grad():
            R32 = R.detach().float()
            keys_n = R32 / R32.norm(dim=1, keepdim=True).clamp(min=self.eps)
            protos = samples.prototypes[act].float()
            protos_n = protos / protos.norm(dim=1, keepdim=True).clamp(
                min=self.eps)
        queries = R[samples.query_index].float()                    # (A, Q, D)
        queries_n = queries / queries.norm(dim=2, keepdim=True).clamp(
            min=self.eps)
        pos = (queries_n * protos_n.unsqueeze(1)).sum(-1)           # (A, Q)
        max_elems = self.max_chunk_elements or (
            2**26 if rep.device.type == 'cuda' else 2**22)
        A = act.numel()
        neg = _GatherDot.apply(queries_n.reshape(A * Q, D), keys_n,
                               samples.negative_index.reshape(A * Q, N),
                               max_elems).view(A, Q, N)
        logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1) / self.temperature
        # cross-entropy with the positive at index 0, mean over the queries
        per_class = (torch.logsumexp(logits, dim=-1) - logits[..., 0]).mean(1)
        loss = per_class.sum() / samples.num_present.to(per_class.dtype)
        return self.loss_weight * loss + zero
