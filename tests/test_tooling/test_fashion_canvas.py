"""Fashion-canvas: composition recipe, splits, labelled subsets, dataset
and the command-line tool."""
import json
import os.path as osp
from pathlib import Path

import numpy as np
import pytest

from mmseg_contrast.datasets.fashion_canvas import (
    FASHION_CLASSES,
    FashionCanvasDataset,
)
from mmseg_contrast.tooling.data import fashion_canvas as fc

from helpers.tool_loading import load_tool


def _photos(n, seed=0):
    rng = np.random.default_rng(seed)
    imgs = np.zeros((n, 28, 28), np.uint8)
    # a bright rectangle per photo (silhouette) on a faint background
    for i in range(n):
        imgs[i] = rng.integers(0, 20, (28, 28))
        y, x = rng.integers(2, 8, 2)
        imgs[i, y:y + 16, x:x + 12] = rng.integers(60, 255)
    return imgs, rng.integers(0, 10, n).astype(np.uint8)


def test_compose_masks_are_silhouette_times_class():
    imgs, labels = _photos(200)
    out, segs, sets, stats = fc.compose_canvases(imgs, labels, 40, seed=3)
    assert out.shape == segs.shape == (40, fc.CANVAS, fc.CANVAS)
    # image is zero exactly where the label is background
    assert np.array_equal(out > 0, segs > 0)
    assert (out[segs > 0] > fc.THRESHOLD).all()
    assert stats['items_placed'] + stats['items_skipped'] == \
        stats['photos_used']
    assert 80 <= stats['photos_used'] <= 160  # 2..4 items per canvas
    for s, cs in zip(segs, sets):
        assert cs == np.unique(s).tolist() and cs[0] == 0
        assert set(cs) <= set(range(11))
    # every label value is the class + 1 of some photo
    assert set(np.unique(segs)) - {0} <= set(labels.astype(int) + 1)
    # deterministic
    again = fc.compose_canvases(imgs, labels, 40, seed=3)
    assert np.array_equal(again[0], out) and np.array_equal(again[1], segs)
    other = fc.compose_canvases(imgs, labels, 40, seed=4)
    assert not np.array_equal(other[1], segs)


def test_compose_needs_enough_photos():
    imgs, labels = _photos(5)
    with pytest.raises(ValueError, match='not enough'):
        fc.compose_canvases(imgs, labels, 10, seed=0)


def test_read_idx_rejects_bad_files(tmp_path):
    p = tmp_path / 'x-idx1-ubyte'
    p.write_bytes(b'\x00\x00\x08\x01' + (3).to_bytes(4, 'big') + b'\x01\x02')
    with pytest.raises(ValueError, match='header says'):
        fc.read_idx(str(p))
    p.write_bytes(b'\x00\x00\x09\x01' + (1).to_bytes(4, 'big') + b'\x01')
    with pytest.raises(ValueError, match='not a uint8 idx'):
        fc.read_idx(str(p))
    p.write_bytes(b'\x00\x00\x08\x01' + (2).to_bytes(4, 'big') + b'\x07\x09')
    assert fc.read_idx(str(p)).tolist() == [7, 9]


@pytest.fixture(scope='module')
def fashion_root():
    return fc.prepare_fashion_canvas('data')


def test_prepared_set(fashion_root):
    with open(osp.join(fashion_root, 'meta.json')) as f:
        meta = json.load(f)
    for split, (_, a, b, num, _) in fc.SPLITS.items():
        assert meta['splits'][split]['canvases'] == num
    # labelled subsets: ReCo's selector, >= 3 classes, all 11 covered
    for key, sub in meta['labeled_subsets'].items():
        lab = Path(osp.join(fashion_root, 'splits',
                            f'train_labeled_{key}.txt')).read_text().split()
        unlab = Path(osp.join(fashion_root, 'splits',
                              f'train_unlabeled_{key}.txt')).read_text().split()
        assert lab == sub['labeled'] and len(lab) == sub['num_labels']
        assert not set(lab) & set(unlab)
        assert len(lab) + len(unlab) == fc.SPLITS['train'][3]
        assert sub['classes_covered'] == list(range(11))
    ds = FashionCanvasDataset(
        data_root=fashion_root,
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations')])
    assert len(ds) == 500 and ds.metainfo['classes'] == FASHION_CLASSES
    item = ds[0]
    assert item['img'].shape == (64, 64, 3)
    seg = item['gt_seg_map']
    assert np.array_equal(item['img'][..., 0] > 0, seg > 0)
    with pytest.raises(ValueError, match='reduce_zero_label'):
        FashionCanvasDataset(data_root=fashion_root, reduce_zero_label=True,
                             data_prefix=dict(img_path='img_dir/test'))


def test_cli_prepares_the_same_set(fashion_root, capsys):
    tool = load_tool('dataset_converters/fashion_canvas.py')
    with open(osp.join(fashion_root, 'meta.json')) as f:
        before = f.read()
    assert tool.main(['--data-root', 'data']) == fashion_root
    out = capsys.readouterr().out
    assert f'[fashion-canvas] {fashion_root} (' in out
    with open(osp.join(fashion_root, 'meta.json')) as f:
        assert f.read() == before  # cached: nothing rebuilt
