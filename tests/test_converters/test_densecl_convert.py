"""densecl2mmseg: every DenseCL checkpoint layout, exact key accounting and
the refusal of silent partial loads."""
import os.path as osp

import pytest
import torch
from mmengine.registry import DefaultScope

from mmseg_contrast.converters.densecl import (
    PartialLoadError,
    convert_densecl_checkpoint,
    detect_format,
    extract_backbone_state_dict,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
R18 = dict(type='ResNet', depth=18)


def _mmseg_r18_sd(seed):
    from mmseg.models.backbones import ResNet
    torch.manual_seed(seed)
    net = ResNet(depth=18)
    for p in net.parameters():
        torch.nn.init.normal_(p)
    return net.state_dict()


def _neck_sd(seed):
    g = torch.Generator().manual_seed(seed)
    return {
        'mlp.0.weight': torch.randn(8, 512, generator=g),
        'mlp.0.bias': torch.randn(8, generator=g),
        'mlp.2.weight': torch.randn(4, 8, generator=g),
        'mlp.2.bias': torch.randn(4, generator=g),
        'mlp2.0.weight': torch.randn(8, 512, 1, 1, generator=g),
        'mlp2.0.bias': torch.randn(8, generator=g),
        'mlp2.2.weight': torch.randn(4, 8, 1, 1, generator=g),
        'mlp2.2.bias': torch.randn(4, generator=g),
    }


def _queues():
    return {
        'queue': torch.randn(4, 16),
        'queue_ptr': torch.zeros(1, dtype=torch.long),
        'queue2': torch.randn(4, 16),
        'queue2_ptr': torch.zeros(1, dtype=torch.long),
    }


def _prefixed(prefix, sd):
    return {prefix + k: v for k, v in sd.items()}


@pytest.fixture(scope='module')
def parts():
    return dict(q=_mmseg_r18_sd(0), k=_mmseg_r18_sd(1), nq=_neck_sd(2),
                nk=_neck_sd(3))


def _official(parts):
    return {'state_dict': dict(parts['q']), 'author': 'DenseCL'}


def _mmselfsup0x(parts):
    sd = {}
    sd.update(_prefixed('encoder_q.0.', parts['q']))
    sd.update(_prefixed('encoder_q.1.', parts['nq']))
    sd.update(_prefixed('encoder_k.0.', parts['k']))
    sd.update(_prefixed('encoder_k.1.', parts['nk']))
    sd.update(_prefixed('backbone.', parts['q']))  # alias of encoder_q[0]
    sd.update(_prefixed('neck.', parts['nq']))  # alias of encoder_q[1]
    sd.update(_queues())
    return {'meta': {'epoch': 200}, 'state_dict': sd}


def _mmpretrain1x(parts):
    sd = {}
    sd.update(_prefixed('backbone.', parts['q']))
    sd.update(_prefixed('neck.', parts['nq']))
    sd['encoder_k.steps'] = torch.tensor(5)
    sd.update(_prefixed('encoder_k.module.0.', parts['k']))
    sd.update(_prefixed('encoder_k.module.1.', parts['nk']))
    sd.update(_queues())
    return {'meta': {}, 'state_dict': sd, 'message_hub': {}}


def _assert_same(sd, ref):
    assert set(sd) == set(ref)
    for k, v in ref.items():
        assert torch.equal(sd[k], v), k
        assert sd[k].is_contiguous()


def test_official_backbone_only(parts):
    ckpt = _official(parts)
    out, rep = convert_densecl_checkpoint(ckpt, backbone_cfg=R18)
    assert rep.source_format == 'backbone-only'
    assert rep.num_source_keys == 120 and rep.num_dropped == 0
    assert rep.missing == rep.unexpected == rep.shape_mismatch == []
    _assert_same(out['state_dict'], parts['q'])
    # bare state dict (no 'state_dict' wrapper) and DDP 'module.' prefix
    out2, _ = convert_densecl_checkpoint(
        _prefixed('module.', parts['q']), backbone_cfg=R18)
    _assert_same(out2['state_dict'], parts['q'])


def test_mmselfsup0x_query_and_key(parts):
    ckpt = _mmselfsup0x(parts)
    assert detect_format(ckpt['state_dict']) == 'mmselfsup-0.x'
    out, rep = convert_densecl_checkpoint(ckpt, backbone_cfg=R18)
    _assert_same(out['state_dict'], parts['q'])
    n_bb, n_neck = len(parts['q']), len(parts['nq'])
    assert rep.num_source_keys == 3 * n_bb + 3 * n_neck + 4
    assert {k: len(v) for k, v in rep.dropped.items()} == {
        'encoder_q': n_neck,  # encoder_q.1.* (the query neck)
        'encoder_k': n_bb + n_neck,
        'backbone': n_bb,  # the alias, identical to encoder_q.0.*
        'neck': n_neck,
        'queue': 1, 'queue_ptr': 1, 'queue2': 1, 'queue2_ptr': 1}
    assert len(rep.backbone_keys) + rep.num_dropped == rep.num_source_keys
    key_out, key_rep = convert_densecl_checkpoint(
        ckpt, backbone_cfg=R18, encoder='key')
    _assert_same(key_out['state_dict'], parts['k'])
    assert key_rep.encoder == 'key'


def test_mmpretrain1x_synthetic(parts):
    ckpt = _mmpretrain1x(parts)
    out, rep = convert_densecl_checkpoint(ckpt, backbone_cfg=R18)
    assert rep.source_format == 'mmpretrain-1.x'
    _assert_same(out['state_dict'], parts['q'])
    n_bb, n_neck = len(parts['q']), len(parts['nq'])
    assert {k: len(v) for k, v in rep.dropped.items()} == {
        'neck': n_neck, 'encoder_k': 1 + n_bb + n_neck,
        'queue': 1, 'queue_ptr': 1, 'queue2': 1, 'queue2_ptr': 1}
    key_out, _ = convert_densecl_checkpoint(ckpt, encoder='key')
    _assert_same(key_out['state_dict'], parts['k'])
    with pytest.raises(ValueError, match='no momentum'):
        extract_backbone_state_dict(_official(parts), encoder='key')


def test_real_mmpretrain_densecl_checkpoint(tmp_path):
    """The state dict of an actual mmpretrain DenseCL (ResNet-18)."""
    from mmpretrain.registry import MODELS

    import mmseg_contrast  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(
            dict(
                type='CheckedDenseCL', queue_len=8, feat_dim=4,
                backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
                neck=dict(type='DenseCLNeck', in_channels=512,
                          hid_channels=8, out_channels=4),
                head=dict(type='ContrastiveHead',
                          loss=dict(type='CrossEntropyLoss'),
                          temperature=0.2)))
    sd = model.state_dict()
    src = tmp_path / 'densecl.pth'
    torch.save({'meta': {}, 'state_dict': sd}, src)
    dst = tmp_path / 'out' / 'r18.pth'
    _, rep = convert_densecl_checkpoint(str(src), str(dst), backbone_cfg=R18)
    saved = torch.load(dst, weights_only=True)
    bb = {k[len('backbone.'):]: v for k, v in sd.items()
          if k.startswith('backbone.')}
    _assert_same(saved['state_dict'], bb)
    assert set(rep.dropped) == {'neck', 'encoder_k', 'queue', 'queue_ptr',
                                'queue2', 'queue2_ptr'}
    assert sorted(rep.dropped['encoder_k']) == sorted(
        k for k in sd if k.startswith('encoder_k.'))
    assert saved['meta']['missing'] == [] and \
        saved['meta']['num_backbone_keys'] == 120


def test_stem_mismatch_refused(parts, tmp_path):
    """Plain (V1b) ResNet stem into ResNetV1c's deep stem."""
    ckpt = _mmpretrain1x(parts)
    v1c = dict(type='ResNetV1c', depth=18)
    with pytest.raises(PartialLoadError, match="type='ResNet'") as e:
        convert_densecl_checkpoint(ckpt, str(tmp_path / 'x.pth'),
                                   backbone_cfg=v1c)
    assert '18 target keys would stay randomly initialised' in str(e.value)
    assert not (tmp_path / 'x.pth').exists()
    out, rep = convert_densecl_checkpoint(
        ckpt, backbone_cfg=v1c, allow_partial=True)
    assert len(rep.missing) == 18 and all(
        k.startswith('stem.') for k in rep.missing)
    assert sorted(rep.unexpected) == sorted(
        k for k in parts['q'] if k.startswith(('conv1.', 'bn1.')))
    assert len(out['state_dict']) == 120 - 6


def test_depth_mismatch_refused(parts):
    with pytest.raises(PartialLoadError, match='wrong shape'):
        convert_densecl_checkpoint(
            _official(parts), backbone_cfg=dict(type='ResNet', depth=34))


def test_ignore_unexpected_mobilenetv2():
    """mmpretrain MobileNetV2 has a classification conv2 mmseg's lacks."""
    from mmpretrain.models import MobileNetV2
    sd = _prefixed('backbone.', MobileNetV2(out_indices=(6, )).state_dict())
    target = dict(type='MobileNetV2')
    with pytest.raises(PartialLoadError, match='6 checkpoint keys'):
        convert_densecl_checkpoint({'state_dict': sd}, backbone_cfg=target)
    out, rep = convert_densecl_checkpoint(
        {'state_dict': sd}, backbone_cfg=target,
        ignore_unexpected=['conv2.*'])
    assert rep.is_complete and len(rep.ignored_unexpected) == 6
    assert not any(k.startswith('conv2.') for k in out['state_dict'])
    assert len(out['state_dict']) == len(sd) - 6


def test_bad_inputs():
    with pytest.raises(ValueError, match='unrecognised DenseCL'):
        extract_backbone_state_dict(
            {'state_dict': {'neck.w': torch.zeros(1), 'x.w': torch.zeros(1)}})
    with pytest.raises(ValueError, match='cannot find the weights'):
        extract_backbone_state_dict({'meta': {}, 'optimizer': {}})
    with pytest.raises(FileNotFoundError):
        convert_densecl_checkpoint('does/not/exist.pth')


def test_cli(parts, tmp_path, capsys):
    from helpers.tool_loading import load_tool
    tool = load_tool('model_converters/densecl2mmseg.py')
    src = tmp_path / 'src.pth'
    torch.save(_mmselfsup0x(parts), src)
    dst = tmp_path / 'dst.pth'
    assert tool.main([str(src), str(dst), '--backbone-type', 'ResNet',
                      '--depth', '18']) == 0
    assert 'missing 0, unexpected 0' in capsys.readouterr().out
    _assert_same(torch.load(dst, weights_only=True)['state_dict'],
                 parts['q'])
    bad = tmp_path / 'bad.pth'
    assert tool.main([str(src), str(bad), '--backbone-type', 'ResNetV1c',
                      '--depth', '18']) == 1
    assert 'refusing a partial load' in capsys.readouterr().err
    assert not bad.exists()
