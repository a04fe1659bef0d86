"""model-index.yml + metafiles: parse, configs exist, weights are named
``<name>-<sha256[:8]>.pth``; ``tools/misc/download_weights.py`` resolves a
name and downloads it verified (local HTTP server)."""
import hashlib
import io
import os.path as osp

import pytest
import torch
import yaml

from mmseg_contrast.tooling.model_zoo import (
    find_model,
    is_hashed_weights_url,
    load_model_index,
)

from helpers.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _repo_config(cfg):
    """A metafile ``Config`` must be a file of this repository that
    ``Config.fromfile`` (and mim, which reads it as a path) can load."""
    from mmengine.config import Config
    assert '::' not in cfg, f'{cfg}: not a path mim or Config.fromfile read'
    path = osp.join(REPO, cfg)
    assert osp.isfile(path), cfg
    return Config.fromfile(path)


def test_model_index_and_metafiles():
    from mmseg_contrast.checkpoint.download import hash_prefix_from_url
    index = osp.join(REPO, 'model-index.yml')
    with open(index) as f:
        imports = yaml.safe_load(f)['Import']
    assert imports, 'model-index.yml imports no metafile'
    models = load_model_index(index)
    assert models
    names = [m['Name'] for m in models]
    assert len(names) == len(set(names)), 'duplicate model names'
    for rel in imports:
        with open(osp.join(REPO, rel)) as f:
            meta = yaml.safe_load(f)
        assert meta['Collections'] and meta['Models'], rel
        for c in meta['Collections']:
            if 'README' in c:
                assert osp.isfile(osp.join(REPO, c['README'])), c['README']
    for m in models:
        assert m['_collection'] is not None, \
            f'{m["Name"]}: unknown collection {m.get("In Collection")}'
        _repo_config(m['Config'])
        for d in m.get('Downstream', []):
            assert d in names, (m['Name'], d)
        if 'Converted From' in m:  # the original file, converted on load
            assert m['Weights'] == m['Converted From']['Weights']
            assert m['Converted From']['Code'].startswith('https://')
        elif 'Weights' in m:
            assert is_hashed_weights_url(m['Weights']), m['Weights']
            assert hash_prefix_from_url(m['Weights']), m['Weights']
        for r in m.get('Results', []):
            assert r['Metrics'] and all(
                isinstance(v, (int, float)) and v > 0
                for v in r['Metrics'].values()), (m['Name'], r)


# the ContrastiveSeg README (tfzhou/ContrastiveSeg, Cityscapes val mIoU)
AUTHORS = {
    'fcn_hr48_openseg_4xb2-40k_cityscapes-512x1024':
    ('hrnet_w48', 'hrnet_w48_lr1x_hrnet_ce_max_performance.pth', 79.27),
    'fcn_hr48_openseg-contrast_4xb2-40k_cityscapes-512x1024':
    ('hrnet_w48_contrast',
     'hrnet_w48_contrast_lr1x_hrnet_contrast_t0.1_max_performance.pth',
     80.18),
    'deeplabv3_r101-d8_openseg_4xb2-40k_cityscapes-512x1024':
    ('deeplabv3_r101_d8', 'deeplab_v3_deepbase_resnet101_dilated8_'
     'deeplab_v3_max_performance.pth', 72.75),
    'deeplabv3_r101-d8_openseg-contrast_4xb2-40k_cityscapes-512x1024':
    ('deeplabv3_r101_d8_contrast', 'deeplab_v3_contrast_deepbase_resnet101_'
     'dilated8_deeplab_v3_contrast_max_performance.pth', 77.67),
}


def test_contrastiveseg_entries():
    from mmseg_contrast.converters.openseg import OPENSEG_ARCHS
    release = 'https://github.com/tfzhou/pretrained_weights/releases/' \
        'download/v0.1/'
    entries = {m['Name']: m for m in load_model_index()
               if m['In Collection'] == 'ContrastiveSeg'}
    assert set(entries) == set(AUTHORS)
    for name, (arch, file, miou) in AUTHORS.items():
        m = entries[name]
        assert m['Weights'] == release + file
        assert m['Config'] == OPENSEG_ARCHS[arch]  # the converter's config
        assert m['Config'] == f'configs/pixel_contrast/{name}.py'
        assert m['Results'][0]['Metrics'] == {'mIoU': miou}
        assert m['Results'][0]['Dataset'] == 'Cityscapes'
    # the README lists them with the authors' numbers, as converted
    with open(osp.join(REPO, 'README.md')) as f:
        readme = f.read()
    zoo = readme[readme.index('## Model zoo'):]
    zoo = zoo[:zoo.index('\n## ', 5)]
    assert 'converted, not retrained here' in zoo
    for name, (_, _, miou) in AUTHORS.items():
        assert f'configs/pixel_contrast/{name}.py' in zoo and str(miou) in zoo


def test_densecl_weights_load_into_their_configs():
    """The layouts the DenseCL entries describe fill their configs' models:
    torchvision / mmseg ResNet-50 V1b keys (what the mmselfsup 0.x backbone
    file holds) and the same keys under ``backbone.`` (mmpretrain 1.x)."""
    import torchvision
    from mmengine.registry import DefaultScope
    with torch.device('meta'):
        r50 = {k: v.shape
               for k, v in torchvision.models.resnet50().state_dict().items()
               if not k.startswith('fc.')}
    entries = {m['Name']: m for m in load_model_index()
               if m['In Collection'] == 'DenseCL'}
    old = entries['densecl_resnet50_8xb32-coslr-200e_in1k_mmselfsup-0.x-'
                  'backbone']
    cfg = _repo_config(old['Config'])
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    assert 'prefix' not in cfg.model.backbone.init_cfg
    backbone_cfg = dict(cfg.model.backbone, init_cfg=None)
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'), torch.device('meta'):
        backbone = MODELS.build(backbone_cfg)
    sd = backbone.state_dict()
    assert {k: v.shape for k, v in sd.items()} == r50  # every tensor
    pre = entries['densecl_resnet50_8xb32-coslr-200e_in1k']
    cfg = _repo_config(pre['Config'])
    from mmpretrain.registry import MODELS as PRETRAIN
    # on CPU: mmpretrain's ResNet calls .item() in __init__ (no meta device)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = PRETRAIN.build(cfg.model)
    keys = set(model.state_dict())
    assert not keys & set(r50)  # the 0.x file would load into 0 tensors
    assert {'backbone.' + k for k in r50} <= keys  # the 1.x file's backbone
    assert 'Results' not in pre  # a pre-training checkpoint
    probe = entries[pre['Downstream'][0]]
    assert probe['Results'][0]['Metrics'] == {'Top 1 Accuracy': 63.5}
    _repo_config(probe['Config'])


def test_weights_regex():
    assert is_hashed_weights_url('https://a.b/c/x_20220825-3078723b.pth')
    assert not is_hashed_weights_url('https://h.co/densecl_r50_200ep.pth')
    assert not is_hashed_weights_url('https://a.b/x-3078723.pth')
    assert not is_hashed_weights_url('https://a.b/x-20210302.pth')  # a date


def test_download_weights_tool(tmp_path):
    from helpers.local_http_server import FileServer
    tool = load_tool('misc/download_weights.py')
    buf = io.BytesIO()
    torch.save({'state_dict': {'w': torch.arange(100.)}}, buf)
    data = buf.getvalue()  # a checkpoint: the downloader refuses anything else
    name = f'toy_20260101-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    with FileServer() as srv:
        srv.files[f'/w/{name}'] = data
        srv.files['/w/bad_20260101-00000000.pth'] = data
        (tmp_path / 'configs' / 'toy').mkdir(parents=True)
        (tmp_path / 'configs' / 'toy' / 'metafile.yaml').write_text(
            yaml.safe_dump({
                'Collections': [{'Name': 'Toy'}],
                'Models': [{'Name': 'toy', 'In Collection': 'Toy',
                            'Config': 'configs/toy/toy.py',
                            'Weights': srv.url(f'/w/{name}')},
                           {'Name': 'bad', 'In Collection': 'Toy',
                            'Config': 'configs/toy/toy.py',
                            'Weights': srv.url(
                                '/w/bad_20260101-00000000.pth')}]}))
        index = tmp_path / 'model-index.yml'
        index.write_text('Import:\n  - configs/toy/metafile.yaml\n')
        assert find_model('toy', str(index))['Config'] == 'configs/toy/toy.py'
        with pytest.raises(KeyError, match="known: bad, toy"):
            find_model('nope', str(index))
        dest = tmp_path / 'dl'
        paths = tool.main(['toy', '--dest', str(dest), '--model-index',
                           str(index)])
        assert open(paths[0], 'rb').read() == data
        from mmseg_contrast.checkpoint.download import ChecksumError
        with pytest.raises(ChecksumError):
            tool.main(['bad', '--dest', str(dest), '--model-index',
                       str(index)])
        assert sorted(p.name for p in dest.rglob('*') if p.is_file()) == \
            [name]
