"""Converted ContrastiveSeg checkpoints give the authors' logits.

The reference outputs in ``tests/data/openseg/reference.npz`` were computed
once by the authors' own model code (``HRNet_W48_CONTRAST``, ``HRNet_W48``,
``DeepLabV3Contrast``, ``DeepLabV3`` of ``tfzhou/ContrastiveSeg``) in eval
mode, with the deterministic weights of ``tests/helpers/openseg_layout.py``
on a fixed 68x132 BGR image normalised by their Cityscapes configs. Here the
same weights, in the authors' key layout with the ``module.`` prefix, go
through the converter, load strictly into the ``configs/pixel_contrast/
*openseg*`` models, and the image goes through the config's data
preprocessor. Relative error ``||ours - ref|| / ||ref||`` must be <= 1e-4 at
the head's output resolution (observed ~1e-6). 68x132 gives HRNet branches
of 17x33, 9x17, 5x9, 3x5 (no exact 2x ratios, so the fuse interpolation is
exercised) and an even 34x66 stem output for the ResNet (where the
``ceil_mode`` pooling differs). Controls show each registered variant is
needed: the stock mmseg layers with the same weights are far off.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_contrast.converters.openseg import convert_openseg_checkpoint

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers import openseg_layout as L  # noqa: E402

CFG = osp.join(REPO, 'configs', 'pixel_contrast')
CONFIGS = {
    ('hrnet_w48_contrast', False):
    'fcn_hr48_openseg-contrast_4xb2-40k_cityscapes-512x1024.py',
    ('hrnet_w48_contrast', True):
    'fcn_hr48_openseg_4xb2-40k_cityscapes-512x1024.py',
    ('deeplabv3_r101_d8_contrast', False):
    'deeplabv3_r101-d8_openseg-contrast_4xb2-40k_cityscapes-512x1024.py',
    ('deeplabv3_r101_d8_contrast', True):
    'deeplabv3_r101-d8_openseg_4xb2-40k_cityscapes-512x1024.py',
}
TOL = 1e-4


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def build(cfg_name, state_dict):
    """The config's model with ``state_dict`` loaded strictly. Built on the
    meta device and loaded with ``assign=True`` (no init, no copy); the
    data preprocessor (non-persistent mean/std buffers) is built for real."""
    cfg = Config.fromfile(osp.join(CFG, cfg_name))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    model = revert_sync_batchnorm(model)
    model.load_state_dict(state_dict, strict=True, assign=True)
    model.data_preprocessor = MODELS.build(cfg.model.data_preprocessor)
    return model.eval()


@pytest.fixture(scope='module')
def ref():
    return L.reference_outputs()


@pytest.fixture(scope='module')
def image():
    return torch.from_numpy(L.reference_image()).permute(2, 0, 1).contiguous()


@pytest.fixture(scope='module', params=L.ARCHS)
def converted(request):
    """(arch, converted contrast checkpoint, converted CE checkpoint), from
    the authors' layout with the ``module.`` prefix of their saves."""
    arch = request.param
    src = L.openseg_state_dict(arch)
    drop = 'module.' + L.load_manifest(arch)[0]['ce_drop_prefix']
    out = {}
    for ce, sd in ((False, src), (True, {k: v for k, v in src.items()
                                         if not k.startswith(drop)})):
        out[ce] = convert_openseg_checkpoint(
            {'config_dict': {'network': {}}, 'state_dict': sd})
        meta = out[ce]['meta']['openseg']
        assert meta['num_source_keys'] == len(sd) and meta['dropped'] == []
    return arch, out[False], out[True]


def _key(arch):
    return 'hrnet' if arch.startswith('hrnet') else 'deeplab'


def _seg(model, image):
    with torch.no_grad():
        inputs = model.data_preprocessor({'inputs': [image]},
                                         False)['inputs']
        feats = model.extract_feat(inputs)
        return inputs, feats, model.decode_head(feats)


def test_contrast_checkpoint_matches_authors_code(converted, ref, image):
    arch, ckpt, _ = converted
    key = _key(arch)
    model = build(CONFIGS[(arch, False)], ckpt['state_dict'])
    _, feats, seg = _seg(model, image)
    assert rel_err(seg, ref[f'{key}_seg']) <= TOL
    head = model.decode_head
    assert head.proj_in == 'backbone'
    with torch.no_grad():
        embed = head.proj_head(head._transform_inputs(feats))
    assert rel_err(embed[:, :16], ref[f'{key}_embed16']) <= TOL
    if key == 'deeplab':
        with torch.no_grad():
            aux = model.auxiliary_head(feats)
        assert rel_err(aux, ref['deeplab_aux']) <= TOL


def _stock_fuse(hrnet):
    """Turn AlignedHRNet back into mmseg's HRNet behaviour, in place."""
    from mmseg.models.backbones.hrnet import HRModule

    from mmseg_contrast.models.backbones.aligned_hrnet import _fuse_paths
    for m in hrnet.modules():
        if isinstance(m, HRModule):
            m._forward_pre_hooks.clear()
            for _, up in _fuse_paths(m):
                up.size, up.align_corners = None, False


def test_ce_checkpoint_matches_authors_code(converted, ref, image):
    """CE config: the logits, the upsampled prediction, and controls that
    put each stock mmseg behaviour back (each must miss by > 1 %)."""
    arch, _, ckpt = converted
    key = _key(arch)
    model = build(CONFIGS[(arch, True)], ckpt['state_dict'])
    inputs, _, seg = _seg(model, image)
    assert rel_err(seg, ref[f'{key}_seg']) <= TOL
    controls = {}
    if key == 'hrnet':
        # predict(): upsampled to the image like HRNet_W48.forward
        # (align_corners=True); the reference keeps every 8th pixel
        h, w = image.shape[1:]
        sample = SegDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        with torch.no_grad():
            full = model.predict(inputs, [sample])[0].seg_logits.data
        assert rel_err(full[None, :, ::8, ::8], ref['hrnet_full']) <= TOL
        model.decode_head.align_corners = False  # mmseg's resize_concat
        controls['head align_corners=False'] = _seg(model, image)[2]
        model.decode_head.align_corners = True
        _stock_fuse(model.backbone)  # mmseg's fuse layers
        controls['stock HRNet fuse'] = _seg(model, image)[2]
    else:
        model.backbone.maxpool.ceil_mode = False  # mmseg's stem pool
        controls['maxpool ceil_mode=False'] = _seg(model, image)[2]
        model.backbone.maxpool.ceil_mode = True
    model.data_preprocessor.channel_conversion = True  # mmseg's RGB input
    controls['bgr_to_rgb=True'] = _seg(model, image)[2]
    for what, out in controls.items():
        assert rel_err(out, ref[f'{key}_seg']) > 1e-2, what


def test_ce_conversion_is_contrast_minus_projection(converted):
    _, con, ce = converted
    proj = {k for k in con['state_dict'] if '.proj_head.' in k}
    assert proj and set(ce['state_dict']) == set(con['state_dict']) - proj
    assert ce['meta']['openseg']['arch'] + '_contrast' == \
        con['meta']['openseg']['arch']
