"""Convert openseg.pytorch / ContrastiveSeg checkpoints into mmseg ones.

The ContrastiveSeg authors' released Cityscapes checkpoints (release ``v0.1``
of ``tfzhou/pretrained_weights``) are openseg.pytorch saves:
``{'config_dict': <their JSON config + CLI args>, 'state_dict': net}``, keys
with a ``module.`` prefix (DDP) or without. Four layouts are recognised from
the keys alone (the architecture facts are in the docstrings of
:mod:`mmseg_contrast.models.backbones` and
:mod:`mmseg_contrast.models.decode_heads.openseg_aspp_head`):

``hrnet_w48`` / ``hrnet_w48_contrast``
    ``HRNet_W48`` / ``HRNet_W48_CONTRAST``: ``backbone.*`` (HRNetV2, the same
    key names as mmseg's ``HRNet``), ``cls_head.{0,1.0,3}`` (conv3x3 with
    bias -> BN -> ReLU -> Dropout2d -> 1x1 classifier without bias), and for
    the contrast model ``proj_head.proj.{0,1.0,2}``.
``deeplabv3_r101_d8`` / ``deeplabv3_r101_d8_contrast``
    ``DeepLabV3`` / ``DeepLabV3Contrast`` on ``deepbase_resnet101_dilated8``:
    ``backbone.resinit.*`` (deep stem), ``backbone.layer{1-4}.*``,
    ``decoder.layer_dsn.*`` (auxiliary head on layer3),
    ``decoder.layer_aspp.b{0-4}.*`` + ``project.*``, ``decoder.refine.*``,
    and for the contrast model ``proj_head.proj.*`` on layer4.

Every source tensor is mapped, or the conversion is refused: an unknown
layout, a key no rule consumes or a config that says the model differs from
the mmseg configs (e.g. ``dilated16``) raises :class:`OpenSegLayoutError`
naming it. Exact re-expressions, all recorded in the output's ``meta``:

* a conv bias followed by BN (``cls_head.0``, ``layer_dsn.0``,
  ``proj_head.proj.0``) is folded into that BN's ``running_mean``
  (``BN(Wx + b) = BN'(Wx)`` with ``mean' = mean - b``), since mmseg's
  ``ConvModule`` has no bias before a norm;
* the HRNet classifier has no bias: mmseg's ``conv_seg.bias`` is added as
  zeros;
* openseg concatenates the ASPP image-pool branch last, mmseg first: the
  input channels of the ASPP bottleneck conv are permuted accordingly.

The matching mmseg configs are ``configs/pixel_contrast/*_openseg*`` (see
:data:`OPENSEG_ARCHS`); ``tests/test_models/test_openseg_equivalence.py``
checks that converted weights give the authors' logits. Loading downloads
(and caching their conversion) is
:mod:`mmseg_contrast.checkpoint.openseg_cache`.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

from .keys import abbrev, strip_module

__all__ = [
    'OpenSegLayoutError', 'OPENSEG_ARCHS', 'CONVERTER_VERSION',
    'is_openseg_checkpoint', 'detect_openseg_arch',
    'convert_openseg_state_dict', 'convert_openseg_checkpoint',
    'summary'
]

#: bumped when the mapping changes (cached conversions are then redone)
CONVERTER_VERSION = 1

_CFG = 'configs/pixel_contrast/'
#: architecture -> matching config in this repository
OPENSEG_ARCHS = {
    'hrnet_w48': _CFG + 'fcn_hr48_openseg_4xb2-40k_cityscapes-512x1024.py',
    'hrnet_w48_contrast':
    _CFG + 'fcn_hr48_openseg-contrast_4xb2-40k_cityscapes-512x1024.py',
    'deeplabv3_r101_d8':
    _CFG + 'deeplabv3_r101-d8_openseg_4xb2-40k_cityscapes-512x1024.py',
    'deeplabv3_r101_d8_contrast':
    _CFG + 'deeplabv3_r101-d8_openseg-contrast_4xb2-40k_cityscapes-512x1024.py',  # noqa: E501
}

# openseg config values the mmseg configs rebuild (network.backbone)
_BACKBONE_NAMES = {'hrnet': ('hrnet48', ), 'deeplab': (
    'deepbase_resnet101_dilated8', )}
_HRNET_WIDTH = 48
# the modules of openseg's HighResolutionNet used by the segmentation nets
# (``keep_imagenet_head`` would add incre_modules / downsamp_modules /
# final_layer and change the outputs: refused)
_HRNET_BACKBONE = re.compile(
    r'^backbone\.(conv[12]|bn[12]|layer1|transition[123]|stage[234])\.')
_RESNET101_BLOCKS = (3, 4, 23, 3)
_BN_SUFFIXES = ('weight', 'bias', 'running_mean', 'running_var',
                'num_batches_tracked')


class OpenSegLayoutError(ValueError):
    """The checkpoint is not one of the supported openseg layouts."""


_SIGNATURE = ('cls_head.0.weight', 'decoder.layer_aspp.b0.0.weight',
              'backbone.resinit.conv1.weight')


def is_openseg_checkpoint(ckpt) -> bool:
    """True for an openseg save (``config_dict`` + ``state_dict``) or a
    state dict with openseg-only module names. Cheap: looks at names only."""
    if not isinstance(ckpt, dict):
        return False
    sd = ckpt.get('state_dict', ckpt)
    if not isinstance(sd, dict):
        return False
    if 'config_dict' in ckpt and 'state_dict' in ckpt:
        return True
    keys = {k[len('module.'):] if k.startswith('module.') else k for k in sd}
    return any(k in keys for k in _SIGNATURE)


def _config_value(config_dict, *path):
    node = config_dict
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def _check_config(config_dict, family: str) -> None:
    """Refuse what the keys cannot show (dilation, multi-grid)."""
    if not isinstance(config_dict, dict):
        return
    backbone = _config_value(config_dict, 'network', 'backbone')
    if backbone is not None and backbone not in _BACKBONE_NAMES[family]:
        raise OpenSegLayoutError(
            f'the checkpoint\'s config says network.backbone={backbone!r}; '
            f'the openseg configs of this repository rebuild '
            f'{" / ".join(_BACKBONE_NAMES[family])} only (the weights of '
            f'other dilations or widths would load but compute a different '
            f'model)')
    grid = _config_value(config_dict, 'network', 'multi_grid')
    if family == 'deeplab' and grid is not None and list(grid) != [1, 1, 1]:
        raise OpenSegLayoutError(
            f'network.multi_grid={grid}: only [1, 1, 1] (the released '
            f'Cityscapes setting, mmseg contract_dilation) is supported')


def _shape(sd, key):
    if key not in sd:
        raise OpenSegLayoutError(f'{key} is missing')
    return tuple(sd[key].shape)


def detect_openseg_arch(state_dict, config_dict=None) -> Tuple[str, int]:
    """``(arch, num_classes)`` of an openseg state dict (no ``module.``).

    Raises:
        OpenSegLayoutError: not a supported layout; the message says which
            part does not fit.
    """
    sd = state_dict
    keys = set(sd)
    tops = {k.split('.', 1)[0] for k in keys}
    contrast = 'proj_head' in tops
    if 'cls_head.0.weight' in keys and \
            'backbone.stage4.0.fuse_layers.0.1.0.weight' in keys:
        family = 'hrnet'
        extra = tops - {'backbone', 'cls_head', 'proj_head'}
        if extra:
            raise OpenSegLayoutError(
                f'HRNet checkpoint with modules {sorted(extra)}: only '
                f'HRNet_W48 / HRNet_W48_CONTRAST (backbone, cls_head, '
                f'proj_head) are supported, not OCR or memory variants')
        odd = [k for k in keys
               if k.startswith('backbone.') and not _HRNET_BACKBONE.match(k)]
        if odd:
            raise OpenSegLayoutError(
                f'HRNet backbone with modules the segmentation HRNet does not '
                f'have: {abbrev(odd)}')
        width = _shape(sd, 'backbone.transition1.0.0.weight')[0]
        if width != _HRNET_WIDTH:
            raise OpenSegLayoutError(
                f'HRNet width {width}: only HRNet-W48 is supported')
        cls = _shape(sd, 'cls_head.0.weight')
        if cls != (15 * width, 15 * width, 3, 3):
            raise OpenSegLayoutError(
                f'cls_head.0.weight has shape {cls}, expected a '
                f'3x3 conv {15 * width}->{15 * width}')
        num_classes = _shape(sd, 'cls_head.3.weight')[0]
        arch = 'hrnet_w48'
    elif 'decoder.layer_aspp.b0.0.weight' in keys and \
            'backbone.resinit.conv3.weight' in keys:
        family = 'deeplab'
        extra = tops - {'backbone', 'decoder', 'proj_head'}
        if extra:
            raise OpenSegLayoutError(
                f'DeepLab checkpoint with modules {sorted(extra)}: only '
                f'DeepLabV3 / DeepLabV3Contrast are supported')
        blocks = tuple(
            len({k.split('.')[2] for k in keys
                 if k.startswith(f'backbone.layer{i}.')}) for i in range(1, 5))
        if blocks != _RESNET101_BLOCKS:
            raise OpenSegLayoutError(
                f'ResNet with {blocks} blocks per stage: only the deep-stem '
                f'ResNet-101 {_RESNET101_BLOCKS} is supported')
        stem = _shape(sd, 'backbone.resinit.conv3.weight')
        if stem != (128, 64, 3, 3):
            raise OpenSegLayoutError(
                f'backbone.resinit.conv3.weight {stem}: expected the '
                f'deep_base stem 64->128')
        num_classes = _shape(sd, 'decoder.refine.2.weight')[0]
        arch = 'deeplabv3_r101_d8'
    else:
        raise OpenSegLayoutError(
            f'unknown layout (top-level modules {sorted(tops)}): expected '
            f'openseg HRNet_W48[_CONTRAST] (backbone.stage4.*, cls_head.*) '
            f'or DeepLabV3[Contrast] (backbone.resinit.*, decoder.layer_aspp'
            f'.*)')
    _check_config(config_dict, family)
    return arch + ('_contrast' if contrast else ''), int(num_classes)


class _Mapper:
    """Consumes source keys exactly once and records what it did."""

    def __init__(self, src):
        self.src = src
        self.left = set(src)
        self.out = OrderedDict()
        self.folded = []
        self.added = {}

    def take(self, key):
        if key not in self.left:
            raise OpenSegLayoutError(f'missing or reused source key {key!r}')
        self.left.discard(key)
        return self.src[key]

    def put(self, key, value):
        if key in self.out:  # pragma: no cover - mapping bug guard
            raise RuntimeError(f'duplicate target key {key}')
        # no copy: the source checkpoint is not reused (and a download
        # plus its conversion then cost the memory of one)
        self.out[key] = value.detach()

    def copy(self, src, dst):
        self.put(dst, self.take(src))

    def prefix(self, src_prefix, dst_prefix):
        for k in sorted(k for k in self.left if k.startswith(src_prefix)):
            self.copy(k, dst_prefix + k[len(src_prefix):])

    def bn(self, src, dst, fold_bias=None):
        for s in _BN_SUFFIXES:
            if f'{src}.{s}' in self.left:
                self.copy(f'{src}.{s}', f'{dst}.{s}')
        for s in ('weight', 'bias', 'running_mean', 'running_var'):
            if f'{dst}.{s}' not in self.out:
                raise OpenSegLayoutError(f'{src}.{s} missing (BN expected)')
        if fold_bias is not None:
            bias = self.take(fold_bias).to(self.out[f'{dst}.running_mean'])
            self.out[f'{dst}.running_mean'] = \
                self.out[f'{dst}.running_mean'] - bias
            self.folded.append(f'{fold_bias} -> {dst}.running_mean')

    def conv_bn(self, src_conv, src_bn, dst):
        """conv (+ bias folded) -> BN into an mmseg ConvModule ``dst``."""
        self.copy(f'{src_conv}.weight', f'{dst}.conv.weight')
        bias = f'{src_conv}.bias'
        self.bn(src_bn, f'{dst}.bn',
                fold_bias=bias if bias in self.left else None)


def _map_proj(m: _Mapper):
    m.conv_bn('proj_head.proj.0', 'proj_head.proj.1.0',
              'decode_head.proj_head.layers.0')
    m.copy('proj_head.proj.2.weight', 'decode_head.proj_head.layers.1.weight')
    m.copy('proj_head.proj.2.bias', 'decode_head.proj_head.layers.1.bias')


def _map_hrnet(m: _Mapper, contrast: bool):
    m.prefix('backbone.', 'backbone.')
    m.conv_bn('cls_head.0', 'cls_head.1.0', 'decode_head.convs.0')
    w = m.take('cls_head.3.weight')
    m.put('decode_head.conv_seg.weight', w)
    m.put('decode_head.conv_seg.bias', w.new_zeros(w.shape[0]))
    m.added['decode_head.conv_seg.bias'] = \
        'zeros (the openseg classifier has no bias)'
    if contrast:
        _map_proj(m)


def _map_deeplab(m: _Mapper, contrast: bool):
    for i, (conv, bn) in enumerate([('conv1', 'bn1'), ('conv2', 'bn2'),
                                    ('conv3', 'bn3')]):
        m.copy(f'backbone.resinit.{conv}.weight',
               f'backbone.stem.{3 * i}.weight')
        m.bn(f'backbone.resinit.{bn}', f'backbone.stem.{3 * i + 1}')
    for i in range(1, 5):
        m.prefix(f'backbone.layer{i}.', f'backbone.layer{i}.')
    # auxiliary (DSN) head on layer3
    m.conv_bn('decoder.layer_dsn.0', 'decoder.layer_dsn.1.0',
              'auxiliary_head.convs.0')
    m.copy('decoder.layer_dsn.2.weight', 'auxiliary_head.conv_seg.weight')
    m.copy('decoder.layer_dsn.2.bias', 'auxiliary_head.conv_seg.bias')
    # ASPP: openseg b0..b3 = mmseg aspp_modules.0..3, b4 = image_pool
    aspp = 'decoder.layer_aspp'
    for i in range(4):
        m.conv_bn(f'{aspp}.b{i}.0', f'{aspp}.b{i}.1.0',
                  f'decode_head.aspp_modules.{i}')
    m.conv_bn(f'{aspp}.b4.1', f'{aspp}.b4.2.0', 'decode_head.image_pool.1')
    w = m.take(f'{aspp}.project.0.weight')
    c = w.shape[1] // 5
    m.put('decode_head.bottleneck.conv.weight',
          torch.cat([w[:, 4 * c:], w[:, :4 * c]], dim=1))
    m.bn(f'{aspp}.project.1.0', 'decode_head.bottleneck.bn')
    m.added['decode_head.bottleneck.conv.weight'] = \
        'input channels permuted: openseg [1x1, d12, d24, d36, pool] -> ' \
        'mmseg [pool, 1x1, d12, d24, d36]'
    m.copy('decoder.refine.0.weight', 'decode_head.refine.conv.weight')
    m.bn('decoder.refine.1', 'decode_head.refine.bn')
    m.copy('decoder.refine.2.weight', 'decode_head.conv_seg.weight')
    m.copy('decoder.refine.2.bias', 'decode_head.conv_seg.bias')
    if contrast:
        _map_proj(m)


def convert_openseg_state_dict(state_dict, config_dict=None):
    """``(mmseg_state_dict, meta)`` for an openseg state dict.

    ``meta`` holds ``arch``, ``num_classes``, ``config`` (the matching config
    of this repository), ``num_source_keys``, ``dropped`` (always empty:
    nothing is dropped silently), ``folded_biases`` and ``added``.
    """
    src = strip_module(state_dict)
    bad = [k for k, v in src.items() if not torch.is_tensor(v)]
    if bad:
        raise OpenSegLayoutError(f'non-tensor entries: {abbrev(bad)}')
    arch, num_classes = detect_openseg_arch(src, config_dict)
    m = _Mapper(src)
    contrast = arch.endswith('_contrast')
    if arch.startswith('hrnet'):
        _map_hrnet(m, contrast)
    else:
        _map_deeplab(m, contrast)
    if m.left:
        raise OpenSegLayoutError(
            f'{arch}: {len(m.left)} source key(s) have no mmseg counterpart '
            f'({abbrev(m.left)}); refusing a partial conversion')
    meta = dict(
        arch=arch,
        num_classes=num_classes,
        config=OPENSEG_ARCHS[arch],
        num_source_keys=len(src),
        dropped=[],
        folded_biases=m.folded,
        added=m.added,
        converter='mmseg_contrast.converters.openseg',
        converter_version=CONVERTER_VERSION)
    model_name = _config_value(config_dict, 'network', 'model_name')
    if model_name is not None:
        meta['source_model_name'] = str(model_name)
    return m.out, meta


def convert_openseg_checkpoint(ckpt) -> Dict:
    """An openseg checkpoint dict -> ``{'state_dict', 'meta'}`` for mmseg."""
    if not isinstance(ckpt, dict):
        raise OpenSegLayoutError(
            f'expected a dict checkpoint, got {type(ckpt).__name__}')
    sd = ckpt.get('state_dict', ckpt)
    if not isinstance(sd, dict):
        raise OpenSegLayoutError("the checkpoint's 'state_dict' is not a dict")
    config_dict = ckpt.get('config_dict') if 'state_dict' in ckpt else None
    state_dict, meta = convert_openseg_state_dict(sd, config_dict)
    return {'state_dict': state_dict, 'meta': {'openseg': meta}}


def summary(meta: Dict) -> List[str]:
    """Human-readable lines for a conversion's ``meta['openseg']``."""
    lines = [f"architecture: {meta['arch']} ({meta['num_classes']} classes)",
             f"source keys: {meta['num_source_keys']}, all mapped "
             f"(dropped: {len(meta['dropped'])})",
             f"config: {meta['config']}"]
    lines += [f'folded conv bias: {f}' for f in meta['folded_biases']]
    lines += [f'{k}: {v}' for k, v in meta['added'].items()]
    return lines


