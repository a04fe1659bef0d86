"""openseg.pytorch / ContrastiveSeg checkpoint conversion: layouts, refusals,
the CLI and the conversion cache (the logits are checked against the
authors' code in tests/test_models/test_openseg_equivalence.py)."""
import os
import os.path as osp

import pytest
import torch

from mmseg_contrast.checkpoint.openseg_cache import load_maybe_converted
from mmseg_contrast.converters import openseg as oc
from mmseg_contrast.converters.openseg import (
    OpenSegLayoutError,
    convert_openseg_checkpoint,
    is_openseg_checkpoint,
)

from helpers.openseg_layout import ARCHS, deterministic_tensor, load_manifest
from helpers.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HR, DL = ARCHS


def layout(arch, ce=False, prefix='module.', real=()):
    """The authors' keys and shapes; the tensors are zero views of one
    element (cheap) except the keys in ``real`` (deterministic values)."""
    man, keys = load_manifest(arch)
    sd = {}
    for k, s, d in keys:
        if ce and k.startswith(man['ce_drop_prefix']):
            continue
        if k in real:
            sd[prefix + k] = deterministic_tensor(k, s, d)
        else:
            sd[prefix + k] = torch.zeros((), dtype=getattr(torch, d)).expand(s)
    return sd


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('ce', [False, True])
def test_detects_layouts_with_and_without_module_prefix(arch, ce):
    with_prefix = convert_openseg_checkpoint(
        {'config_dict': {}, 'state_dict': layout(arch, ce)})
    without = convert_openseg_checkpoint(
        {'state_dict': layout(arch, ce, prefix='')})
    meta = with_prefix['meta']['openseg']
    expected = arch[:-len('_contrast')] if ce else arch
    assert meta['arch'] == expected and meta['num_classes'] == 19
    assert meta['dropped'] == []
    assert meta['num_source_keys'] == len(layout(arch, ce))
    assert list(with_prefix['state_dict']) == list(without['state_dict'])
    assert osp.isfile(osp.join(REPO, meta['config']))
    assert all(k.startswith(('backbone.', 'decode_head.', 'auxiliary_head.'))
               for k in with_prefix['state_dict'])


def test_exact_reexpressions():
    real = {'cls_head.0.bias', 'cls_head.1.0.running_mean',
            'proj_head.proj.0.bias', 'proj_head.proj.1.0.running_mean'}
    out = convert_openseg_checkpoint(layout(HR, real=real))['state_dict']
    d = deterministic_tensor
    assert torch.equal(
        out['decode_head.convs.0.bn.running_mean'],
        d('cls_head.1.0.running_mean', (720, )) - d('cls_head.0.bias',
                                                   (720, )))
    assert torch.equal(
        out['decode_head.proj_head.layers.0.bn.running_mean'],
        d('proj_head.proj.1.0.running_mean', (720, )) -
        d('proj_head.proj.0.bias', (720, )))
    assert torch.equal(out['decode_head.conv_seg.bias'], torch.zeros(19))
    w_key = 'decoder.layer_aspp.project.0.weight'
    out = convert_openseg_checkpoint(layout(DL, real={w_key}))['state_dict']
    w = d(w_key, (512, 2560, 3, 3))
    got = out['decode_head.bottleneck.conv.weight']
    assert torch.equal(got[:, :512], w[:, 2048:])  # image pool first
    assert torch.equal(got[:, 512:], w[:, :2048])


def _hr(**extra):
    sd = layout(HR, prefix='')
    sd.update(extra)
    return sd


t = torch.zeros(1)


@pytest.mark.parametrize('sd,config_dict,match', [
    ({'foo.weight': t}, None, 'unknown layout'),
    (_hr(**{'aux_head.0.weight': t}), None, 'not OCR'),
    (_hr(**{'backbone.incre_modules.0.0.conv1.weight': t}), None,
     'does not have'),
    (_hr(**{'cls_head.9.weight': t}), None, 'no mmseg counterpart'),
    (_hr(**{'backbone.transition1.0.0.weight': torch.zeros(18, 256, 3, 3)}),
     None, 'only HRNet-W48'),
    (_hr(), {'network': {'backbone': 'hrnet18'}}, 'hrnet48'),
    (layout(DL), {'network': {'backbone': 'deepbase_resnet101_dilated16'}},
     'dilated16'),
    (layout(DL), {'network': {'multi_grid': [1, 2, 4]}}, 'multi_grid'),
    ({k: v for k, v in layout(DL, prefix='').items()
      if not k.startswith('backbone.layer3.22.')}, None, 'ResNet-101'),
    (dict(layout(DL, prefix=''), **{'decoder.extra.weight': t}), None,
     'decoder.extra.weight'),
    (_hr(**{'backbone.conv1.weight': 'not a tensor'}), None, 'non-tensor'),
])
def test_unknown_layouts_are_refused(sd, config_dict, match):
    with pytest.raises(OpenSegLayoutError, match=match):
        convert_openseg_checkpoint({'config_dict': config_dict,
                                    'state_dict': sd})


def test_is_openseg_checkpoint():
    assert is_openseg_checkpoint({'config_dict': {}, 'state_dict': {}})
    assert is_openseg_checkpoint(layout(DL, prefix=''))
    assert is_openseg_checkpoint({'state_dict': layout(HR)})
    mmseg = {'meta': {}, 'state_dict': {'decode_head.conv_seg.weight': t,
                                        'backbone.conv1.weight': t}}
    assert not is_openseg_checkpoint(mmseg)
    assert not is_openseg_checkpoint(['x'])


def _tool():
    return load_tool('model_converters/contrastiveseg2mmseg.py')


def test_cli_converts_and_verifies_strictly(tmp_path, capsys):
    src, dst = tmp_path / 'ce.pth', tmp_path / 'out' / 'ce_mmseg.pth'
    torch.save({'config_dict': {'network': {'backbone': 'hrnet48'}},
                'state_dict': layout(HR, ce=True)}, src)
    assert _tool().main([str(src), str(dst)]) == 0
    out = capsys.readouterr().out
    assert 'verified: loads strictly into' in out and 'hrnet_w48 ' in out
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['openseg']['source'] == 'ce.pth'
    # the contrast config also accepts it? no: proj_head keys are missing
    cfg = osp.join(REPO, oc.OPENSEG_ARCHS['hrnet_w48_contrast'])
    assert _tool().main([str(src), str(tmp_path / 'x.pth'), '--config',
                         cfg]) == 1
    assert 'does not load strictly' in capsys.readouterr().err
    assert not (tmp_path / 'x.pth').exists()


def test_cli_refuses_unsafe_and_unknown_files(tmp_path, capsys):
    evil = tmp_path / 'evil.pth'
    torch.save({'config_dict': {'x': os.getcwd},
                'state_dict': layout(DL, ce=True)}, evil)
    assert _tool().main([str(evil), str(tmp_path / 'o.pth')]) == 1
    assert 'allowlist' in capsys.readouterr().err
    odd = tmp_path / 'odd.pth'
    torch.save({'state_dict': {'foo.weight': t}}, odd)
    assert _tool().main([str(odd), str(tmp_path / 'o.pth'),
                         '--no-verify']) == 1
    assert 'unknown layout' in capsys.readouterr().err
    assert not (tmp_path / 'o.pth').exists()


def test_conversion_is_cached_next_to_the_download(tmp_path, monkeypatch):
    src = tmp_path / 'deeplab_max_performance.pth'
    torch.save({'config_dict': {}, 'state_dict': layout(DL, ce=True)}, src)
    first = load_maybe_converted(str(src), map_location='cpu')
    conv = tmp_path / 'deeplab_max_performance.mmseg.pth'
    assert conv.is_file()
    assert first['meta']['openseg']['source_bytes'] == src.stat().st_size

    def no_conversion(*a, **k):
        raise AssertionError('converted again')

    monkeypatch.setattr(oc, 'convert_openseg_checkpoint', no_conversion)
    second = load_maybe_converted(str(src), map_location='cpu')
    assert list(second['state_dict']) == list(first['state_dict'])
    # a newer converter redoes it
    monkeypatch.setattr(oc, 'CONVERTER_VERSION', oc.CONVERTER_VERSION + 1)
    with pytest.raises(AssertionError, match='converted again'):
        load_maybe_converted(str(src), map_location='cpu')
    # plain mmseg checkpoints pass through untouched, nothing is written
    plain = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'decode_head.conv_seg.weight': t}}, plain)
    assert list(load_maybe_converted(str(plain))['state_dict']) == [
        'decode_head.conv_seg.weight']
    assert not (tmp_path / 'plain.mmseg.pth').exists()
