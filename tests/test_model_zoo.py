"""model-index.yml + metafiles: parse, configs exist, weights are named
``<name>-<sha256[:8]>.pth``; ``tools/misc/download_weights.py`` resolves a
name and downloads it verified (local HTTP server)."""
import hashlib
import importlib.util
import os.path as osp
import sys

import pytest
import yaml

from mmseg_contrast.utils.model_zoo import (WEIGHTS_REGEX, find_model,
                                            load_model_index)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _config_exists(cfg):
    if '::' in cfg:  # e.g. mmpretrain::densecl/x.py, resolved like _base_
        from mmengine.config.utils import _get_package_and_cfg_path
        from mmengine.utils import get_installed_path
        pkg, rel = _get_package_and_cfg_path(cfg)
        return osp.isfile(
            osp.join(get_installed_path(pkg), '.mim', 'configs', rel))
    return osp.isfile(osp.join(REPO, cfg))


def test_model_index_and_metafiles():
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
        assert _config_exists(m['Config']), f'{m["Name"]}: {m["Config"]}'
        if 'Weights' in m:
            assert WEIGHTS_REGEX.match(m['Weights']), m['Weights']
        for r in m.get('Results', []):
            assert r['Metrics'] and all(
                isinstance(v, (int, float)) and v > 0
                for v in r['Metrics'].values()), (m['Name'], r)


def test_weights_regex():
    assert WEIGHTS_REGEX.match('https://a.b/c/x_20220825-3078723b.pth')
    assert not WEIGHTS_REGEX.match('https://h.co/densecl_r50_200ep.pth')
    assert not WEIGHTS_REGEX.match('https://a.b/x-3078723.pth')


def test_download_weights_tool(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'tests', 'test_utils'))
    from local_http_server import FileServer
    spec = importlib.util.spec_from_file_location(
        'tool_download_weights',
        osp.join(REPO, 'tools', 'misc', 'download_weights.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    data = b'not really a checkpoint, but bytes with a known hash' * 100
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
        from mmseg_contrast.utils.download import ChecksumError
        with pytest.raises(ChecksumError):
            tool.main(['bad', '--dest', str(dest), '--model-index',
                       str(index)])
        assert sorted(p.name for p in dest.iterdir()) == [name]
