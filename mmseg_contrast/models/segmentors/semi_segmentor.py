"""Mean-teacher semi-supervised wrapper around any mmseg segmentor (ReCo's
semi-supervised recipe, mmdet 3.x ``SemiBaseDetector`` design)."""
import copy
from contextlib import ExitStack
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import add_prefix
from torch import Tensor

from ..utils.mixing import BatchMixer
from ..utils.unsup_augment import UnsupBatchAugment
from .option_checks import check_semi_train_cfg
from .semi_checkpoint import map_loaded_keys, teacher_as_plain_keys
from .semi_loss_utils import (
    pixel_weights,
    reweight_loss_dict,
    split_head_losses,
    split_tagged_losses,
    unsup_weighting,
)

DEFAULT_SEMI_TRAIN_CFG = dict(
    sup_weight=1.0,
    unsup_weight=1.0,
    weak_threshold=0.7,
    strong_threshold=0.97,
    unsup_weighting='ratio',
    class_portion=0.2,
    mix_mode='classmix',
    count_ignore_as_class=False,
    reco=True,
    teacher_mode='eval',
    unsup_aug=None,
    concat_forward=False)
DEFAULT_SEMI_TEST_CFG = dict(
    predict_on='teacher', forward_on='teacher', extract_feat_on='teacher')
_BRANCHES = ('teacher', 'student')


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
    3. batch augmentation of the strong view, the pseudo-labels and the
       confidences (:meth:`unsup_batch`): ``unsup_aug`` (ReCo's
       ``batch_transform``, off by default; e.g. ``dict(scale=(0.5, 1.5),
       blur_prob=0.5, flip_prob=0.5)``, see
       :class:`~mmseg_contrast.models.utils.unsup_augment.UnsupBatchAugment`)
       rescales / pads / crops, then ``mix_mode`` mixes (ClassMix
       (default), CutMix, CutOut or 'none';
       :mod:`mmseg_contrast.models.utils.mixing`), then ``unsup_aug``
       blurs / flips;
    4. ``unsup`` = student loss on the mixed images against the mixed
       pseudo-labels, times ``unsup_weight``, logged as ``unsup.*``.
       ``unsup_weighting='ratio'`` (ReCo ``compute_unsupervised_loss``):
       every pseudo-labelled pixel is used and image ``b``'s pixel losses are
       multiplied by ``eta_b = #(conf_b >= strong_threshold) / #(valid
       pixels of b)``; ``'threshold'``: pixels with ``conf <
       weak_threshold`` are ignored and the others weigh 1 (FixMatch /
       mmdet style); ``'class_balanced'`` (CBST, Zou et al. ECCV'18):
       besides those, each pseudo-class's ``class_portion`` most confident
       pixels of the batch are kept, so a class the teacher is never sure
       of (while an easy background is) still teaches. With
       ``loss_decode.avg_non_ignore=True`` the CE is the mean over valid
       pixels like the reference (which averages over
       pixels with a non-zero loss; the two differ only by pixels whose CE
       underflows to exactly 0);
    5. ReCo (when the student's decode head is a ReCo head, e.g.
       ``ReCoASPPHead``, and ``reco=True``): one pooled
       ``ReCoLoss`` on ``cat(labelled, unlabelled)`` representations with
       labels = ground truth / mixed pseudo-labels, valid pixels = labelled
       or ``conf >= weak_threshold``, queries hard if ``p < strong
       threshold`` (inside ``ReCoLoss``), logged as ``reco.loss_reco``.

    ``concat_forward=True`` (ReCo's reference does two forwards; many
    mean-teacher codes do one): steps 2-3 run first and the student makes
    ONE forward of ``cat(labelled, augmented unlabelled)``, so BN sees one
    batch of both; every head's ``loss_by_feat`` is split back into the
    ``sup.*`` and ``unsup.*`` losses (identical values to the two forwards
    when BN is in eval mode); needs equal labelled / unlabelled input
    sizes; losses a head computes outside ``loss_by_feat`` on the whole
    batch are logged as ``joint.*``.

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
        semi_train_cfg (dict): see ``DEFAULT_SEMI_TRAIN_CFG``; the valid
            values (checked when built) are listed in
            :mod:`~mmseg_contrast.models.segmentors.option_checks`.
        semi_test_cfg (dict): ``predict_on`` / ``forward_on`` /
            ``extract_feat_on`` in {'teacher', 'student'}.
        data_preprocessor (dict, optional): defaults to the segmentor's
            ``data_preprocessor``; a ``SegDataPreProcessor`` config (also
            the one mmengine's Runner fills in from the config's top-level
            ``data_preprocessor``) becomes a ``SemiDataPreProcessor`` with
            the same arguments.
        pretrained, train_cfg (optional): what mmseg's ``init_model`` sets
            on any model config (``None`` there); a value other than None
            is passed to the wrapped segmentor.
    """

    def __init__(self,
                 segmentor: dict,
                 semi_train_cfg: Optional[dict] = None,
                 semi_test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None):
        if not isinstance(segmentor, dict) or 'type' not in segmentor:
            raise TypeError('SemiSegmentor: `segmentor` must be a segmentor '
                            'config dict with a `type`')
        segmentor = copy.deepcopy(dict(segmentor))
        for key, value in (('pretrained', pretrained),
                           ('train_cfg', train_cfg)):
            if value is not None:
                segmentor[key] = value
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
        check_semi_train_cfg(cfg)
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

        self.unsup_aug = UnsupBatchAugment.build(cfg['unsup_aug'])
        self._register_state_dict_hook(teacher_as_plain_keys)
        self._register_load_state_dict_pre_hook(map_loaded_keys)

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
        # padding from the host-side img_shape by slicing: no host-to-device
        # copy of the sizes (torch.tensor(list, device=...) would be one)
        for b, ds in enumerate(data_samples):
            h, w = tuple(ds.metainfo.get('img_shape', (H, W)))[:2]
            if h < H:
                labels[b, h:] = self.ignore_index
                conf[b, h:] = 0.
            if w < W:
                labels[b, :, w:] = self.ignore_index
                conf[b, :, w:] = 0.
        return labels, conf

    def _reco_head(self):
        head = self.main_head
        if self.semi_train_cfg['reco'] and hasattr(head, 'deferred_reco') \
                and hasattr(head, 'reco_loss_from'):
            return head
        return None

    def unsup_batch(self, weak: Tensor, strong: Tensor, data_samples):
        """Pseudo-labels of the weak view, then the strong view's batch
        augmentation: ``unsup_aug`` geometry (rescale / pad / crop), mixing,
        ``unsup_aug`` photometry (blur / flip), and the loss weighting.

        Returns:
            dict: ``img`` (student input), ``labels`` / ``conf`` (mixed
            pseudo-labels and confidences), ``ce_labels`` and ``weight`` (the
            unsupervised CE's targets and pixel weights), ``eta``,
            ``valid``, ``confident``.
        """
        ignore = self.ignore_index
        labels, conf = self.get_pseudo_labels(weak, data_samples)
        aug = self.unsup_aug
        if aug is not None:
            strong, labels, conf = aug.geometric(strong, labels, conf, ignore)
        strong, labels, conf = self.mixer(
            strong, labels, conf, num_classes=self.num_classes,
            ignore_index=ignore)
        if aug is not None:
            strong, labels, conf = aug.photometric(strong, labels, conf)
        weight, ce_labels, eta, valid, confident = unsup_weighting(
            labels, conf, self.semi_train_cfg, ignore, self.num_classes)
        return dict(img=strong, labels=labels, conf=conf,
                    ce_labels=ce_labels, weight=weight, eta=eta, valid=valid,
                    confident=confident)

    def _concat_losses(self, sup_inputs, sup_samples, un, un_samples):
        """One student forward of ``cat(labelled, unlabelled)`` (shared BN
        statistics), losses split back into the two parts."""
        if tuple(sup_inputs.shape[1:]) != tuple(un['img'].shape[1:]):
            raise ValueError(
                f'semi_train_cfg.concat_forward needs labelled and '
                f'unlabelled inputs of the same size, got '
                f'{tuple(sup_inputs.shape[1:])} and '
                f"{tuple(un['img'].shape[1:])}: pad both to the crop size "
                f'(data_preprocessor size=crop_size) and keep '
                f'unsup_aug.crop_size unset, or use concat_forward=False')
        n = sup_inputs.shape[0]
        with split_head_losses(self.student, n, un['weight']):
            tagged = self.student.loss(
                torch.cat([sup_inputs, un['img']]),
                list(sup_samples) + list(un_samples))
        return split_tagged_losses(tagged)

    def loss(self, inputs, data_samples) -> Dict[str, Tensor]:
        if not isinstance(inputs, dict):  # a plain labelled batch
            inputs, data_samples = dict(sup=inputs), dict(sup=data_samples)
        cfg = self.semi_train_cfg
        losses = dict()
        reco_head = self._reco_head()
        parts = []  # (labels, valid mask) per captured student forward
        sup_inputs = inputs.get('sup') if cfg['sup_weight'] > 0 else None
        weak = inputs.get('unsup_weak') if cfg['unsup_weight'] > 0 else None
        concat = cfg['concat_forward'] and sup_inputs is not None \
            and weak is not None
        sup_losses = un_losses = un = gt = None
        with ExitStack() as stack:
            cache = (stack.enter_context(reco_head.deferred_reco())
                     if reco_head is not None else None)
            if sup_inputs is not None:
                sup_samples = data_samples['sup']
                gt = torch.stack([
                    ds.gt_sem_seg.data for ds in sup_samples]).squeeze(1)
                if not concat:
                    sup_losses = self.student.loss(sup_inputs, sup_samples)
            if weak is not None:
                un_samples = data_samples['unsup']
                strong = inputs.get('unsup_strong')
                un = self.unsup_batch(
                    weak, weak if strong is None else strong, un_samples)
                for ds, lab in zip(un_samples, un['ce_labels']):
                    ds.gt_sem_seg = PixelData(data=lab[None])
                if concat:
                    sup_losses, un_losses, joint = self._concat_losses(
                        sup_inputs, sup_samples, un, un_samples)
                    losses.update(add_prefix(joint, 'joint'))
                else:
                    with pixel_weights(self.student, un['weight']):
                        un_losses = self.student.loss(un['img'], un_samples)
        if sup_losses is not None:
            losses.update(add_prefix(
                reweight_loss_dict(sup_losses, cfg['sup_weight']), 'sup'))
        if un_losses is not None:
            un_losses = reweight_loss_dict(un_losses, cfg['unsup_weight'])
            n_all = un['valid'].sum().clamp(min=1)
            un_losses['pseudo_conf_ratio'] = un['eta'].mean()
            un_losses['pseudo_valid_ratio'] = \
                (un['confident'] & un['valid']).sum() / n_all
            losses.update(add_prefix(un_losses, 'unsup'))
        if reco_head is not None:
            un_mask = None if un is None else un['confident'] & un['valid']
            if concat:
                parts = [(torch.cat([gt, un['labels']]),
                          torch.cat([torch.ones_like(gt, dtype=torch.bool),
                                     un_mask]))]
            else:
                parts = ([(gt, None)] if gt is not None else []) + \
                    ([(un['labels'], un_mask)] if un is not None else [])
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
