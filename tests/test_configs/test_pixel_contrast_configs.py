"""Every config in configs/pixel_contrast parses and builds its model.

Models are built on the ``meta`` device (no memory, no pretrained weights:
``init_weights`` is never called), so the R101 / HRNet-W48 configs are cheap.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from mmseg_contrast.models.decode_heads import PixelContrastMixin

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'pixel_contrast',
                                    '*.py')))


def test_folder_has_the_expected_configs():
    names = {osp.basename(c) for c in CONFIGS}
    for family in ('deeplabv3_r101', 'fcn_hr48', 'ocrnet_hr48'):
        for data in ('cityscapes', 'pascal-context-59', 'coco-stuff10k'):
            assert any(n.startswith(family) and data in n for n in names), \
                (family, data)
    assert any('contrast-mem' in n for n in names)
    assert any('aal' in n for n in names)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses_and_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['mmseg_contrast']
    heads = cfg.model.decode_head
    heads = heads if isinstance(heads, list) else [heads]
    contrast_cfgs = [h for h in heads if h['type'].startswith('Contrast')]
    if 'openseg_' in osp.basename(path):  # the authors' CE baselines
        assert contrast_cfgs == [] and 'custom_hooks' not in cfg
        return
    assert len(contrast_cfgs) == 1
    hook_types = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert 'ContrastWarmupHook' in hook_types
    has_bank = contrast_cfgs[0].get('memory_bank') is not None
    assert ('PixelMemoryBankHook' in hook_types) == has_bank

    model_cfg = cfg.model.copy()
    model_cfg.pop('pretrained', None)
    if model_cfg.get('backbone', {}).get('init_cfg') is not None:
        model_cfg.backbone.init_cfg = None
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    heads = [m for m in model.modules() if isinstance(m, PixelContrastMixin)]
    assert len(heads) == 1
    head = heads[0]
    loss_cfg = contrast_cfgs[0]['contrast_loss']
    assert head.contrast_loss.temperature == loss_cfg['temperature']
    assert head.contrast_loss.loss_weight == loss_cfg['loss_weight']
    assert head.proj_head.layers[-1].out_channels == contrast_cfgs[0][
        'proj_channels']
    assert (head.memory_bank is not None) == has_bank
    # ignore_index reaches the loss; the paper configs project the
    # reference's input (the head's backbone input: 2048 / 720 ch)
    assert head.contrast_loss.ignore_index == head.ignore_index
    if 'aal_cpu' in osp.basename(path):
        assert head.proj_in == 'pre_classifier'
    else:
        assert head.proj_in == 'backbone'
        assert head.proj_head.layers[0].conv.in_channels == \
            head.in_channels in (720, 2048)
    if has_bank:
        assert head.memory_bank.num_classes == head.num_classes
