"""Convert DenseCL checkpoints into mmseg backbone checkpoints, refusing
silent partial loads.

Supported source formats (detected from the keys, see
``shared reference densecl.md`` §3.1):

``backbone-only``
    Official DenseCL release / ``extract_backbone_weights.py`` output /
    mmselfsup 0.x model-zoo files: ``{'state_dict': {'conv1.weight', ...}}``
    (or a bare state dict), keys without prefix.
``mmselfsup-0.x``
    Full OpenSelfSup / mmselfsup 0.x training checkpoint: ``encoder_q.0.*``
    (query backbone), ``encoder_q.1.*`` (query neck), ``encoder_k.{0,1}.*``
    (momentum encoder), the aliases ``backbone.*`` / ``neck.*`` and the queues
    ``queue``, ``queue_ptr``, ``queue2``, ``queue2_ptr``.
``mmpretrain-1.x``
    mmselfsup 1.x / mmpretrain 1.x ``DenseCL`` checkpoint: ``backbone.*``,
    ``neck.*``, (``head.*``), ``encoder_k.steps``, ``encoder_k.module.0.*``
    (momentum backbone), ``encoder_k.module.1.*`` (momentum neck), queues.
``backbone-prefixed``
    Any other checkpoint whose backbone lives under ``backbone.``.

A ``module.`` prefix (DDP-wrapped saves) is stripped first.

The result is ``{'state_dict': {key: tensor}, 'meta': {...}}`` with keys in the
mmseg backbone's own namespace (no prefix) and plain contiguous CPU tensors,
loadable by ``init_cfg=dict(type='Pretrained', checkpoint=...)`` (no
``prefix``). Before writing, the keys and shapes are compared against a target
mmseg backbone; any missing target key, unexpected source key or shape
mismatch raises :class:`PartialLoadError` unless ``allow_partial=True``.
This catches the classic DenseCL transfer bug: plain ResNet (V1b) weights
(``conv1``/``bn1``) loaded into mmseg's default ``ResNetV1c`` (deep stem
``stem.*``) with ``strict=False`` leave the stem at random init without any
error. Keys that are known not to exist in the target (e.g. mmpretrain
MobileNetV2's classification ``conv2.*``) can be dropped explicitly with
``ignore_unexpected`` glob patterns.
"""
import copy
import fnmatch
import os.path as osp
from collections import OrderedDict

import torch
from mmengine.config import Config, ConfigDict
from mmengine.hub import get_config
from mmseg.registry import MODELS

from ..checkpoint.safety import load_checkpoint_file
from ..checkpoint.saving import atomic_torch_save
from .keys import abbrev, state_dict_of, strip_module

__all__ = [
    'PartialLoadError', 'ConversionReport', 'detect_format',
    'extract_backbone_state_dict', 'resolve_backbone_cfg',
    'build_target_backbone',
    'check_against_target', 'convert_densecl_checkpoint', 'SOURCE_FORMATS'
]

SOURCE_FORMATS = ('backbone-only', 'mmselfsup-0.x', 'mmpretrain-1.x',
                  'backbone-prefixed')

# prefixes of the query / momentum backbones in each format
_BACKBONE_PREFIX = {
    'mmpretrain-1.x': {'query': 'backbone.', 'key': 'encoder_k.module.0.'},
    'mmselfsup-0.x': {'query': 'encoder_q.0.', 'key': 'encoder_k.0.'},
    'backbone-prefixed': {'query': 'backbone.', 'key': None},
    'backbone-only': {'query': '', 'key': None},
}

# top-level names that belong to a self-supervised algorithm, not a backbone
_ALGO_ROOTS = ('backbone', 'neck', 'head', 'encoder_q', 'encoder_k', 'queue',
               'queue_ptr', 'queue2', 'queue2_ptr', 'data_preprocessor')


class PartialLoadError(RuntimeError):
    """The converted weights would only partially initialise the target."""


class ConversionReport:
    """Exact key accounting of one conversion.

    Attributes:
        source_format (str): one of :data:`SOURCE_FORMATS`.
        encoder (str): ``'query'`` or ``'key'`` (momentum) backbone taken.
        num_source_keys (int): tensors in the source state dict.
        dropped (dict[str, list[str]]): source keys not converted, grouped by
            their top-level name (``neck``, ``encoder_k``, ``queue``, ...).
        backbone_keys (list[str]): converted keys (target namespace).
        missing (list[str]): target keys the checkpoint does not provide.
        unexpected (list[str]): converted keys the target does not have.
        ignored_unexpected (list[str]): unexpected keys dropped on purpose
            (``ignore_unexpected`` patterns).
        shape_mismatch (list[tuple]): ``(key, source_shape, target_shape)``.
    """

    def __init__(self, source_format, encoder, num_source_keys, dropped,
                 backbone_keys):
        self.source_format = source_format
        self.encoder = encoder
        self.num_source_keys = num_source_keys
        self.dropped = dropped
        self.backbone_keys = list(backbone_keys)
        self.target = None
        self.missing = []
        self.unexpected = []
        self.ignored_unexpected = []
        self.shape_mismatch = []

    @property
    def num_dropped(self):
        return sum(len(v) for v in self.dropped.values())

    @property
    def is_complete(self):
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def summary(self):
        lines = [
            f'source format: {self.source_format} ({self.encoder} encoder)',
            f'source tensors: {self.num_source_keys}; backbone tensors '
            f'converted: {len(self.backbone_keys)}; dropped: '
            f'{self.num_dropped} '
            + ', '.join(f'{k}={len(v)}' for k, v in sorted(
                self.dropped.items()))
        ]
        if self.target is not None:
            lines.append(
                f'target {self.target}: missing {len(self.missing)}, '
                f'unexpected {len(self.unexpected)}, shape mismatch '
                f'{len(self.shape_mismatch)}, intentionally ignored '
                f'{len(self.ignored_unexpected)}')
            for name, keys in (('missing', self.missing),
                               ('unexpected', self.unexpected),
                               ('ignored', self.ignored_unexpected)):
                if keys:
                    lines.append(f'  {name}: {abbrev(keys)}')
            for k, s, t in self.shape_mismatch:
                lines.append(f'  shape mismatch {k}: checkpoint {s} vs '
                             f'target {t}')
        return '\n'.join(lines)

    def to_meta(self):
        """Plain-python summary stored in the output checkpoint's meta."""
        return dict(
            source_format=self.source_format,
            encoder=self.encoder,
            num_source_keys=self.num_source_keys,
            num_backbone_keys=len(self.backbone_keys),
            dropped={k: len(v)
                     for k, v in self.dropped.items()},
            target=self.target,
            missing=list(self.missing),
            unexpected=list(self.unexpected),
            ignored_unexpected=list(self.ignored_unexpected))


def detect_format(state_dict):
    """Name the DenseCL checkpoint layout of ``state_dict`` (after unwrap)."""
    keys = list(state_dict)
    if any(k.startswith('encoder_k.module.') for k in keys):
        return 'mmpretrain-1.x'
    if any(k.startswith('encoder_q.0.') for k in keys):
        return 'mmselfsup-0.x'
    if any(k.startswith('backbone.') for k in keys):
        return 'backbone-prefixed'
    algo = [k for k in keys if k.split('.')[0] in _ALGO_ROOTS]
    if algo:
        raise ValueError(
            'unrecognised DenseCL checkpoint layout: it has algorithm keys '
            f'({abbrev(algo)}) but no backbone under `backbone.`, '
            '`encoder_q.0.` or `encoder_k.module.0.`')
    return 'backbone-only'


def extract_backbone_state_dict(ckpt, encoder='query'):
    """Take the backbone weights out of any DenseCL checkpoint.

    Args:
        ckpt (dict): the loaded checkpoint (any of :data:`SOURCE_FORMATS`).
        encoder (str): ``'query'`` (the trained encoder, what every DenseCL
            transfer uses) or ``'key'`` (the momentum encoder; only in full
            training checkpoints).

    Returns:
        tuple[OrderedDict, ConversionReport]: backbone state dict without
        prefix (plain contiguous CPU tensors) and the key accounting.
    """
    if encoder not in ('query', 'key'):
        raise ValueError(f"encoder must be 'query' or 'key', got {encoder!r}")
    state_dict = strip_module(state_dict_of(ckpt, 'DenseCL checkpoint'))
    non_tensor = [k for k, v in state_dict.items() if not torch.is_tensor(v)]
    if non_tensor:
        raise TypeError('the state dict holds non-tensor values under '
                        f'{abbrev(non_tensor)}')
    fmt = detect_format(state_dict)
    prefix = _BACKBONE_PREFIX[fmt][encoder]
    if prefix is None:
        raise ValueError(
            f'a {fmt} checkpoint has no momentum (key) encoder; use '
            "encoder='query'")
    out = OrderedDict()
    dropped = {}
    for k, v in state_dict.items():
        if k.startswith(prefix):
            out[k[len(prefix):]] = v.detach().cpu().contiguous().clone()
        else:
            root = k.split('.')[0]
            dropped.setdefault(root, []).append(k)
    if not out:
        raise ValueError(f'no backbone weights under {prefix!r} in this '
                         f'{fmt} checkpoint')
    report = ConversionReport(fmt, encoder, len(state_dict), dropped, out)
    return out, report


def resolve_backbone_cfg(backbone_cfg):
    """Return the backbone config dict from a dict, a config file (also
    ``mmseg::...`` package configs) or a full config (its
    ``model.backbone``)."""
    if isinstance(backbone_cfg, str):
        if '::' in backbone_cfg:  # e.g. 'mmseg::fcn/fcn_r50-d8_...py'
            backbone_cfg = get_config(backbone_cfg)
        else:
            backbone_cfg = Config.fromfile(backbone_cfg)
    if isinstance(backbone_cfg, Config) or (
            isinstance(backbone_cfg, dict) and 'model' in backbone_cfg):
        backbone_cfg = backbone_cfg['model']['backbone']
    if not isinstance(backbone_cfg, dict) or 'type' not in backbone_cfg:
        raise ValueError('the target backbone must be a config dict with a '
                         f"'type', got {backbone_cfg!r}")
    return copy.deepcopy(dict(backbone_cfg))


def build_target_backbone(backbone_cfg):
    """Build the target mmseg backbone (randomly initialised, BN instead of
    SyncBN: the state-dict layout is the same) for key/shape checks."""
    cfg = ConfigDict(resolve_backbone_cfg(backbone_cfg))
    # weights are irrelevant here: never try to load anything
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    if isinstance(cfg.get('norm_cfg'), dict) and cfg.norm_cfg.get(
            'type') in ('SyncBN', 'MMSyncBN'):
        cfg.norm_cfg = dict(cfg.norm_cfg, type='BN')
    cfg.setdefault('_scope_', 'mmseg')
    return MODELS.build(cfg)


def _target_name(backbone_cfg):
    extra = ''
    if 'depth' in backbone_cfg:
        extra = f'(depth={backbone_cfg["depth"]})'
    return f'{backbone_cfg["type"]}{extra}'


def check_against_target(state_dict,
                         report,
                         target,
                         allow_partial=False,
                         ignore_unexpected=()):
    """Compare converted keys/shapes with a target backbone module.

    Fills ``report.missing/unexpected/shape_mismatch/ignored_unexpected``.
    Unexpected keys matching a glob in ``ignore_unexpected`` are removed from
    ``state_dict`` (in place) and listed as ignored. Raises
    :class:`PartialLoadError` when anything else does not match, unless
    ``allow_partial``; in that case only the loadable tensors are kept.
    """
    target_sd = target.state_dict()
    src_keys, tgt_keys = set(state_dict), set(target_sd)
    unexpected = sorted(src_keys - tgt_keys)
    ignored = [
        k for k in unexpected
        if any(fnmatch.fnmatchcase(k, p) for p in ignore_unexpected)
    ]
    for k in ignored:
        del state_dict[k]
    report.ignored_unexpected = ignored
    report.unexpected = [k for k in unexpected if k not in set(ignored)]
    report.missing = sorted(tgt_keys - src_keys)
    report.shape_mismatch = [
        (k, tuple(state_dict[k].shape), tuple(target_sd[k].shape))
        for k in sorted(src_keys & tgt_keys)
        if state_dict[k].shape != target_sd[k].shape
    ]
    if report.is_complete:
        return state_dict
    if not allow_partial:
        raise PartialLoadError(_partial_message(report))
    for k in report.unexpected:
        del state_dict[k]
    for k, _, _ in report.shape_mismatch:
        del state_dict[k]
    return state_dict


def _partial_message(report):
    msg = (f'refusing a partial load into {report.target}: '
           f'{len(report.missing)} target keys would stay randomly '
           f'initialised, {len(report.unexpected)} checkpoint keys would be '
           f'ignored and {len(report.shape_mismatch)} have the wrong shape.')
    miss, unexp = set(report.missing), set(report.unexpected)
    if any(k.startswith('stem.') for k in miss) and 'conv1.weight' in unexp:
        msg += (' The checkpoint has a plain ResNet 7x7 stem '
                '(conv1/bn1, ResNetV1b as used by DenseCL) but the target '
                'has a deep stem (stem.*, ResNetV1c, mmseg\'s default): use '
                "backbone type='ResNet' in the config.")
    elif 'conv1.weight' in miss and any(k.startswith('stem.') for k in unexp):
        msg += (' The checkpoint has a deep stem (stem.*, ResNetV1c) but the '
                "target a plain 7x7 stem: use backbone type='ResNetV1c'.")
    if report.shape_mismatch:
        k, s, t = report.shape_mismatch[0]
        msg += f' First shape mismatch: {k} {s} vs {t} (depth/width?).'
    msg += ('\n' + report.summary() +
            '\nPass allow_partial=True (--allow-partial) to write the '
            'loadable subset anyway, or ignore_unexpected patterns '
            '(--ignore-unexpected) for checkpoint keys that are known to '
            'have no counterpart in the target.')
    return msg


def convert_densecl_checkpoint(src,
                               dst=None,
                               backbone_cfg=None,
                               encoder='query',
                               allow_partial=False,
                               ignore_unexpected=()):
    """Convert a DenseCL checkpoint (path or loaded dict) for mmseg.

    Args:
        src (str | dict): checkpoint path or loaded checkpoint.
        dst (str, optional): where to save ``{'state_dict', 'meta'}``.
        backbone_cfg (dict | str, optional): target mmseg backbone (config
            dict, or a config file whose ``model.backbone`` is used). When
            None no target check is done and a warning is recorded in the
            report (``report.target is None``).
        encoder, allow_partial, ignore_unexpected: see
            :func:`extract_backbone_state_dict` / :func:`check_against_target`.

    Returns:
        tuple[dict, ConversionReport]: the output checkpoint and its report.
    """
    if isinstance(src, str):
        if not osp.isfile(src):
            raise FileNotFoundError(f'checkpoint {src!r} does not exist')
        ckpt = load_checkpoint_file(src, map_location='cpu')
    else:
        ckpt = src
    state_dict, report = extract_backbone_state_dict(ckpt, encoder=encoder)
    if backbone_cfg is not None:
        backbone_cfg = resolve_backbone_cfg(backbone_cfg)
        target = build_target_backbone(backbone_cfg)
        report.target = _target_name(backbone_cfg)
        state_dict = check_against_target(
            state_dict,
            report,
            target,
            allow_partial=allow_partial,
            ignore_unexpected=ignore_unexpected)
    out = {'state_dict': state_dict, 'meta': report.to_meta()}
    if dst is not None:
        atomic_torch_save(out, dst)  # never a half-written dst
    return out, report
