"""Mean-teacher semi-supervised wrapper around any mmseg segmentor (ReCo's
semi-supervised recipe, mmdet 3.x ``SemiBaseDetector`` design)."""
import copy
from contextlib import ExitStack, contextmanager
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import add_prefix

from ..utils.mixing import BatchMixer

DEFAULT_SEMI_TRAIN_CFG = dict(
    sup_weight=1.0,
    unsup_weight=1.0,
    weak_threshold=0.7,
    strong_threshold=0.97,
    unsup_weighting='ratio',
    mix_mode='classmix',
    count_ignore_as_class=False,
    reco=True,
    teacher_mode='eval')
DEFAULT_SEMI_TEST_CFG = dict(
    predict_on='teacher', forward_on='teacher', extract_feat_on='teacher')
_BRANCHES = ('teacher', 'student')


def reweight_loss_dict(losses: dict, weight: float) -> dict:
    """Multiply every entry whose key contains ``'loss'`` by ``weight``."""
    out = {}
    for k, v in losses.items():
        if 'loss' in k:
            v = [x * weight for x in v] if isinstance(v, list) else v * weight
        out[k] = v
    return out


class _PixelWeightSampler:
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


def _heads(segmentor: nn.Module) -> List[nn.Module]:
    heads = []
    for name in ('decode_head', 'auxiliary_head'):
        h = getattr(segmentor, name, None)
        if h is None:
            continue
        heads.extend(list(h) if isinstance(h, nn.ModuleList) else [h])
    return heads


@MODELS.register_module()
class SemiSegmentor(BaseSegmentor):
    """Mean teacher for **any** mmseg segmentor, with ReCo's recipe.

    ``segmentor`` is a stock segmentor config (``EncoderDecoder``,
    ``CascadeEncoderDecoder``, ...). It is built twice: ``student`` (trained)
    and ``teacher`` (EMA of the student, updated by
    :class:`~mmseg_contrast.engine.hooks.MeanTeacherHook`; frozen:
    ``requires_grad=False``, and kept in eval mode although the train loop
    calls ``model.train()`` every iteration).

    Training step (inputs from :class:`SemiDataPreProcessor`):

    1. ``sup`` = student loss on the labelled batch (the head's own losses,
       e.g. CE), times ``sup_weight``, logged as ``sup.*``;
    2. pseudo-labels: the teacher's softmax on the weak unlabelled view,
       ``conf, y = max_c p``; padded pixels are ignore with confidence 0;
    3. batch mixing of the strong view, the pseudo-labels and the
       confidences (``mix_mode``: ClassMix (default), CutMix, CutOut or
       'none'; see :mod:`mmseg_contrast.models.utils.mixing`);
    4. ``unsup`` = student loss on the mixed images against the mixed
       pseudo-labels, times ``unsup_weight``, logged as ``unsup.*``.
       ``unsup_weighting='ratio'`` (ReCo ``compute_unsupervised_loss``):
       every pseudo-labelled pixel is used and image ``b``'s pixel losses are
       multiplied by ``eta_b = #(conf_b >= strong_threshold) / #(valid
       pixels of b)``; ``'threshold'``: pixels with ``conf <
       weak_threshold`` are ignored and the others weigh 1 (FixMatch /
       mmdet style). With ``loss_decode.avg_non_ignore=True`` the CE is the
       mean over valid pixels like the reference (which averages over
       pixels with a non-zero loss; the two differ only by pixels whose CE
       underflows to exactly 0);
    5. ReCo (when the student's decode head is a ReCo head, e.g.
       ``ReCoASPPHead``, and ``reco=True``): one pooled
       ``ReCoLoss`` on ``cat(labelled, unlabelled)`` representations with
       labels = ground truth / mixed pseudo-labels, valid pixels = labelled
       or ``conf >= weak_threshold``, queries hard if ``p < strong
       threshold`` (inside ``ReCoLoss``), logged as ``reco.loss_reco``.

    Total = sup + unsup + ReCo (every key containing ``'loss'``);
    diagnostics (``unsup.pseudo_conf_ratio`` = mean eta, ``unsup.
    pseudo_valid_ratio`` = fraction with ``conf >= weak_threshold``) contain
    no ``'loss'``.

    Teacher mode: ``teacher_mode='eval'`` (default) predicts pseudo-labels
    with the teacher's running BN statistics, which ``MeanTeacherHook``
    averages from the student (``skip_buffer=False``). ReCo itself runs the
    teacher in train mode (batch statistics, its own running statistics
    updated by its forwards, parameters-only EMA): ``teacher_mode='train'``
    together with ``MeanTeacherHook(skip_buffer=True)`` reproduces that.

    Checkpoints: ``state_dict()`` stores the **teacher** under the plain
    segmentor keys (``backbone.*``, ``decode_head.*``, ...) and the student
    under ``student.*``. A semi checkpoint therefore loads directly into the
    plain config (``tools/test.py plain_cfg semi.pth`` evaluates the
    teacher; the ``student.*`` keys are just unexpected keys), and
    ``--resume`` restores both. Loading a **plain** checkpoint (``load_from``
    or ``init_cfg=dict(type='Pretrained', ...)``) puts it into both the
    student and the teacher. ``tools/model_converters/semi2plain.py``
    extracts either branch into a clean plain checkpoint.

    Args:
        segmentor (dict): config of the student/teacher segmentor.
        semi_train_cfg (dict): see ``DEFAULT_SEMI_TRAIN_CFG``.
        semi_test_cfg (dict): ``predict_on`` / ``forward_on`` /
            ``extract_feat_on`` in {'teacher', 'student'}.
        data_preprocessor (dict, optional): defaults to the segmentor's
            ``data_preprocessor``; a ``SegDataPreProcessor`` config (also
            the one mmengine's Runner fills in from the config's top-level
            ``data_preprocessor``) becomes a ``SemiDataPreProcessor`` with
            the same arguments.
    """

    def __init__(self,
                 segmentor: dict,
                 semi_train_cfg: Optional[dict] = None,
                 semi_test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if not isinstance(segmentor, dict) or 'type' not in segmentor:
            raise TypeError('SemiSegmentor: `segmentor` must be a segmentor '
                            'config dict with a `type`')
        segmentor = copy.deepcopy(dict(segmentor))
        if data_preprocessor is None:
            data_preprocessor = segmentor.get('data_preprocessor') or {}
        data_preprocessor = copy.deepcopy(dict(data_preprocessor))
        # mmengine's Runner fills in the config's top-level (plain)
        # ``data_preprocessor``; a plain SegDataPreProcessor cannot split a
        # labelled + unlabelled batch, its semi subclass can (and is the same
        # at test time)
        if data_preprocessor.get('type', 'SegDataPreProcessor') in (
                'SegDataPreProcessor', 'mmseg.SegDataPreProcessor'):
            data_preprocessor['type'] = 'SemiDataPreProcessor'
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = MODELS.build(segmentor)
        self.teacher = MODELS.build(segmentor)
        self.teacher.requires_grad_(False)

        cfg = dict(DEFAULT_SEMI_TRAIN_CFG)
        unknown = set(semi_train_cfg or {}) - set(cfg)
        if unknown:
            raise KeyError(f'SemiSegmentor: unknown semi_train_cfg keys '
                           f'{sorted(unknown)}; valid: {sorted(cfg)}')
        cfg.update(semi_train_cfg or {})
        if cfg['unsup_weighting'] not in ('ratio', 'threshold'):
            raise ValueError(f"unsup_weighting must be 'ratio' or "
                             f"'threshold', got {cfg['unsup_weighting']!r}")
        if cfg['teacher_mode'] not in ('eval', 'train'):
            raise ValueError(f"teacher_mode must be 'eval' or 'train', got "
                             f"{cfg['teacher_mode']!r}")
        self.semi_train_cfg = cfg
        self.mixer = BatchMixer(cfg['mix_mode'],
                                cfg['count_ignore_as_class'])
        test_cfg = dict(DEFAULT_SEMI_TEST_CFG)
        test_cfg.update(semi_test_cfg or {})
        for k, v in test_cfg.items():
            if v not in _BRANCHES:
                raise ValueError(f'semi_test_cfg.{k} must be one of '
                                 f'{_BRANCHES}, got {v!r}')
        self.semi_test_cfg = test_cfg
        self.teacher.train(cfg['teacher_mode'] == 'train')

        self._register_state_dict_hook(SemiSegmentor._teacher_as_plain_keys)
        self._register_load_state_dict_pre_hook(self._map_loaded_keys)

    # ------------------------------------------------------------------ misc
    @property
    def main_head(self) -> nn.Module:
        head = self.student.decode_head
        return head[-1] if isinstance(head, nn.ModuleList) else head

    @property
    def num_classes(self) -> int:
        return self.main_head.num_classes

    @property
    def ignore_index(self) -> int:
        return self.main_head.ignore_index

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.train(
            mode and self.semi_train_cfg['teacher_mode'] == 'train')
        return self

    def init_weights(self):
        super().init_weights()
        self.copy_student_to_teacher()

    @torch.no_grad()
    def copy_student_to_teacher(self):
        """teacher <- student (parameters and buffers)."""
        self.teacher.load_state_dict(self.student.state_dict())

    def _branch(self, key: str) -> nn.Module:
        return getattr(self, self.semi_test_cfg[key])

    # ----------------------------------------------------------- checkpoints
    @staticmethod
    def _teacher_as_plain_keys(module, state_dict, prefix, local_metadata):
        tp = prefix + 'teacher.'
        for k in [k for k in state_dict if k.startswith(tp)]:
            state_dict[prefix + k[len(tp):]] = state_dict.pop(k)
        return state_dict

    def _map_loaded_keys(self, state_dict, prefix, *args, **kwargs):
        own = ('student.', 'teacher.', 'data_preprocessor.', 'mixer.')
        rel = {k: k[len(prefix):] for k in list(state_dict)
               if k.startswith(prefix)}
        has_student = any(r.startswith('student.') for r in rel.values())
        has_teacher = any(r.startswith('teacher.') for r in rel.values())
        for k, r in rel.items():
            if r.startswith(own):
                continue
            v = state_dict.pop(k)
            if has_student:  # our own checkpoint: plain keys = teacher
                state_dict[prefix + 'teacher.' + r] = v
            else:  # a plain supervised checkpoint -> both branches
                state_dict[prefix + 'student.' + r] = v
                if not has_teacher:
                    state_dict[prefix + 'teacher.' + r] = v

    # ------------------------------------------------------------- inference
    def extract_feat(self, inputs: Tensor):
        return self._branch('extract_feat_on').extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]):
        return self._branch('predict_on').encode_decode(
            inputs, batch_img_metas)

    def predict(self, inputs: Tensor, data_samples=None):
        return self._branch('predict_on').predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples=None):
        return self._branch('forward_on')._forward(inputs, data_samples)

    # -------------------------------------------------------------- training
    @torch.no_grad()
    def get_pseudo_labels(self, inputs: Tensor, data_samples):
        """Teacher pseudo-labels on the weak view.

        Returns:
            tuple(Tensor, Tensor): ``(labels, conf)``, (B, H, W) long and
            float; pixels outside each image's ``img_shape`` (padding) are
            ``ignore_index`` with confidence 0.
        """
        B, _, H, W = inputs.shape
        metas = [dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W))
                 for _ in range(B)]
        logits = self.teacher.encode_decode(inputs, metas)
        if tuple(logits.shape[-2:]) != (H, W):
            logits = F.interpolate(
                logits, size=(H, W), mode='bilinear',
                align_corners=self.main_head.align_corners)
        conf, labels = torch.softmax(logits.float(), dim=1).max(1)
        sizes = torch.tensor(
            [tuple(ds.metainfo.get('img_shape', (H, W)))[:2]
             for ds in data_samples],
            device=inputs.device)
        rows = torch.arange(H, device=inputs.device)
        cols = torch.arange(W, device=inputs.device)
        inside = (rows[None, :, None] < sizes[:, 0, None, None]) & \
                 (cols[None, None, :] < sizes[:, 1, None, None])
        labels = labels.masked_fill(~inside, self.ignore_index)
        conf = conf.masked_fill(~inside, 0.)
        return labels, conf

    @contextmanager
    def _pixel_weights(self, weight: Optional[Tensor]):
        if weight is None:
            yield
            return
        heads = _heads(self.student)
        saved = [h.sampler for h in heads]
        try:
            for h, s in zip(heads, saved):
                h.sampler = _PixelWeightSampler(weight, s)
            yield
        finally:
            for h, s in zip(heads, saved):
                h.sampler = s

    def _reco_head(self):
        head = self.main_head
        if self.semi_train_cfg['reco'] and hasattr(head, 'deferred_reco') \
                and hasattr(head, 'reco_loss_from'):
            return head
        return None

    def loss(self, inputs, data_samples) -> Dict[str, Tensor]:
        if not isinstance(inputs, dict):  # a plain labelled batch
            inputs, data_samples = dict(sup=inputs), dict(sup=data_samples)
        cfg = self.semi_train_cfg
        ignore = self.ignore_index
        losses = dict()
        reco_head = self._reco_head()
        parts = []  # (labels, valid mask) per captured student forward
        with ExitStack() as stack:
            cache = (stack.enter_context(reco_head.deferred_reco())
                     if reco_head is not None else None)
            sup_inputs = inputs.get('sup')
            if sup_inputs is not None and cfg['sup_weight'] > 0:
                sup_samples = data_samples['sup']
                sup_losses = self.student.loss(sup_inputs, sup_samples)
                losses.update(add_prefix(
                    reweight_loss_dict(sup_losses, cfg['sup_weight']), 'sup'))
                if cache is not None:
                    gt = torch.stack([
                        ds.gt_sem_seg.data for ds in sup_samples]).squeeze(1)
                    parts.append((gt, None))
            weak = inputs.get('unsup_weak')
            if weak is not None and cfg['unsup_weight'] > 0:
                un_samples = data_samples['unsup']
                strong = inputs.get('unsup_strong')
                strong = weak if strong is None else strong
                labels, conf = self.get_pseudo_labels(weak, un_samples)
                strong, labels, conf = self.mixer(
                    strong, labels, conf, num_classes=self.num_classes,
                    ignore_index=ignore)
                valid = labels != ignore
                confident = conf >= cfg['weak_threshold']
                if cfg['unsup_weighting'] == 'ratio':
                    B = labels.shape[0]
                    n_strong = (conf >= cfg['strong_threshold']).reshape(
                        B, -1).sum(1)
                    n_valid = valid.reshape(B, -1).sum(1).clamp(min=1)
                    eta = n_strong.float() / n_valid.float()
                    weight = eta[:, None, None].expand_as(conf).contiguous()
                    ce_labels = labels
                else:
                    eta = confident.float().flatten(1).mean(1)
                    weight = None
                    ce_labels = labels.masked_fill(~confident, ignore)
                for ds, lab in zip(un_samples, ce_labels):
                    ds.gt_sem_seg = PixelData(data=lab[None])
                with self._pixel_weights(weight):
                    un_losses = self.student.loss(strong, un_samples)
                un_losses = reweight_loss_dict(un_losses, cfg['unsup_weight'])
                n_all = valid.sum().clamp(min=1)
                un_losses['pseudo_conf_ratio'] = eta.mean()
                un_losses['pseudo_valid_ratio'] = \
                    (confident & valid).sum() / n_all
                losses.update(add_prefix(un_losses, 'unsup'))
                if cache is not None:
                    parts.append((labels, confident & valid))
        if reco_head is not None and len(cache) > 0:
            if len(cache) != len(parts):
                raise RuntimeError(
                    f'SemiSegmentor: captured {len(cache)} ReCo features for '
                    f'{len(parts)} student forwards')
            sizes = {tuple(f.shape[-2:]) for f, _ in cache}
            if len(sizes) > 1:
                raise ValueError(
                    f'SemiSegmentor: the pooled ReCo loss needs labelled and '
                    f'unlabelled crops of the same size; got feature sizes '
                    f'{sorted(sizes)}')
            losses['reco.' + reco_head.reco_loss.loss_name] = \
                reco_head.reco_loss_from(
                    [f for f, _ in cache], [z for _, z in cache],
                    [lab for lab, _ in parts], [m for _, m in parts]
                    if any(m is not None for _, m in parts) else None)
        if not losses:
            raise ValueError('SemiSegmentor.loss got neither a labelled nor '
                             'an unlabelled batch (or all weights are 0)')
        return losses
