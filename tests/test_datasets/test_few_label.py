import os.path as osp
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mmseg_contrast.datasets import few_label as fl

from helpers.tool_loading import load_tool

AAL_CONFIG = 'configs/baseline/deeplabv3_mnv2_aal_cpu.py'


def aal_dataset_cfg(aal_root):
    return dict(type='AALSliceDataset', data_root=aal_root,
                data_prefix=dict(img_path='img_dir/train',
                                 seg_map_path='ann_dir/train'))


def voc_dataset_cfg(voc_root):
    return dict(type='PascalVOCDataset', data_root=voc_root,
                data_prefix=dict(img_path='JPEGImages',
                                 seg_map_path='SegmentationClass'),
                ann_file='ImageSets/Segmentation/train.txt')


@pytest.fixture(scope='module')
def aal_maps(aal_root):
    ds = fl.build_label_dataset(aal_dataset_cfg(aal_root))
    return ds, fl.load_label_maps(ds)


# ------------------------------------------------------ partial dataset
def test_least_sampled_class_is_always_covered():
    # three images with class 0 only, one with class 1: whichever image
    # comes first, the second pick must contain the class still at 0.
    names = ['a', 'b', 'c', 'd']
    sets = [[0], [0], [0], [1]]
    for seed in range(10):
        lab, unl = fl.select_labeled_subset(names, sets, 2, seed=seed)
        assert 'd' in lab and len(lab) == 2
        assert sorted(lab + unl) == names and not set(lab) & set(unl)


def test_min_classes_and_no_infinite_loop():
    # class 2 only occurs in an image with < min_classes classes: the
    # reference would keep it "least sampled" forever.
    names = ['a', 'b', 'c', 'd', 'e']
    sets = [[0, 1], [0, 1, 3], [0, 1], [2], [3]]
    signal.alarm(20)
    try:
        lab, _ = fl.select_labeled_subset(names, sets, 3, min_classes=2,
                                          seed=1, num_classes=4)
    finally:
        signal.alarm(0)
    assert lab == ['a', 'b', 'c']
    with pytest.raises(ValueError, match='min_classes'):
        fl.select_labeled_subset(names, sets, 4, min_classes=2)
    # 0 = all images labelled (ReCo convention)
    assert fl.select_labeled_subset(names, sets, 0) == (names, names)


def test_partial_dataset_on_real_data_is_reproducible(aal_root):
    ds = fl.build_label_dataset(aal_dataset_cfg(aal_root))
    names, sets = fl.dataset_class_sets(ds)
    assert names == sorted(names) and len(names) > 20
    for T in (1, 8):
        a = fl.select_labeled_subset(names, sets, 6, min_classes=T, seed=0,
                                     num_classes=16)
        # input order does not matter
        perm = np.random.default_rng(0).permutation(len(names))
        b = fl.select_labeled_subset([names[i] for i in perm],
                                     [sets[i] for i in perm], 6,
                                     min_classes=T, seed=0, num_classes=16)
        assert a == b
        lab, unl = a
        assert len(lab) == 6 and lab == sorted(lab)
        assert sorted(lab + unl) == names
        by_name = dict(zip(names, sets))
        assert all(len(by_name[n]) >= T for n in lab)
    other = fl.select_labeled_subset(names, sets, 6, min_classes=1, seed=1,
                                     num_classes=16)
    assert other[0] != fl.select_labeled_subset(
        names, sets, 6, min_classes=1, seed=0, num_classes=16)[0]
    # class balance: with 16 images every class of the pool is covered
    lab, _ = fl.select_labeled_subset(names, sets, 16, min_classes=1,
                                      seed=0, num_classes=16)
    by_name = dict(zip(names, sets))
    covered = set(np.concatenate([by_name[n] for n in lab]).tolist())
    assert covered == set(np.concatenate(sets).tolist())


def test_partial_dataset_tool_writes_split_files(repo_root, aal_root,
                                                 tmp_path):
    tool = load_tool('dataset_converters/reco_partial_dataset.py')
    outs = []
    for run in range(2):
        lf, uf = tmp_path / f'l{run}.txt', tmp_path / f'u{run}.txt'
        tool.main([
            osp.join(repo_root, AAL_CONFIG), '--fraction', '0.05',
            '--min-classes', '2', '--seed', '3', '--labeled-file',
            str(lf), '--unlabeled-file', str(uf), '--cfg-options',
            f'train_dataloader.dataset.data_root={aal_root}'
        ])
        outs.append((lf.read_text(), uf.read_text()))
    assert outs[0] == outs[1]
    lab = outs[0][0].split()
    unl = outs[0][1].split()
    ds = fl.build_label_dataset(aal_dataset_cfg(aal_root))
    names, sets = fl.dataset_class_sets(ds)
    assert len(lab) == round(0.05 * len(names))
    assert sorted(lab + unl) == names
    # the split file works as an mmseg ann_file
    sub = fl.build_label_dataset(
        dict(aal_dataset_cfg(aal_root), ann_file=str(tmp_path / 'l0.txt')))
    assert len(sub) == len(lab)
    assert all(len(np.unique(gt)) >= 2
               for _, gt in fl.load_label_maps(sub).values())


# ------------------------------------------------------- partial labels
def reference_grow(gt, fraction, rng, ignore_index=255):
    """ReCo's iterative version with scipy.ndimage.binary_dilation."""
    out = np.full_like(gt, ignore_index)
    for c in np.unique(gt):
        if c == ignore_index:
            continue
        region = gt == c
        ys, xs = np.nonzero(region)
        k = int(rng.integers(len(ys)))
        target = int(fraction * region.sum())
        m = np.zeros(gt.shape, bool)
        m[ys[k], xs[k]] = True
        kept = m.copy()
        while kept.sum() < target:
            m = ndimage.binary_dilation(m, structure=np.ones((5, 5), bool))
            kept = m & region
        out[kept] = c
    return out


@pytest.mark.parametrize('mode', ['p0', 'p1', 'p5', 'p25'])
def test_partial_labels_match_iterated_dilation(aal_maps, mode):
    _, maps = aal_maps
    names = list(maps)
    frac = fl.PARTIAL_MODES[mode]
    for name in names[::20]:
        gt = maps[name][1]
        out = fl.partial_label_map(gt, mode, fl.image_rng(0, name))
        ref = reference_grow(gt, frac, fl.image_rng(0, name))
        np.testing.assert_array_equal(out, ref)


def test_partial_label_fractions_and_nesting(aal_maps):
    _, maps = aal_maps
    ratios = {m: [] for m in ('p1', 'p5', 'p25')}
    for name in list(maps)[::4]:
        gt = maps[name][1]
        outs = {m: fl.partial_label_map(gt, m, fl.image_rng(7, name))
                for m in fl.PARTIAL_MODES}
        for c in np.unique(gt):
            n = int((gt == c).sum())
            assert int((outs['p0'] == c).sum()) == 1
            for m in ratios:
                kept = outs[m] == c
                assert np.all(gt[kept] == c)
                target = int(fl.PARTIAL_MODES[m] * n)
                assert kept.sum() >= max(1, target)
                if target > 1:
                    ratios[m].append(kept.sum() / n)
        # same seed pixel for all fractions: nested label sets
        for small, big in (('p0', 'p1'), ('p1', 'p5'), ('p5', 'p25')):
            s = outs[small] != 255
            assert np.all(outs[big][s] == outs[small][s])
    for m, r in ratios.items():
        f = fl.PARTIAL_MODES[m]
        assert len(r) > 10
        # growth is in 5x5 steps, so small targets overshoot more (p1)
        assert f <= np.median(r) < (1.5 if f >= 0.05 else 3.0) * f
    # reproducible / seed dependent
    gt = maps[list(maps)[40]][1]
    a = fl.partial_label_map(gt, 'p5', fl.image_rng(0, 'x'))
    b = fl.partial_label_map(gt, 'p5', fl.image_rng(0, 'x'))
    c = fl.partial_label_map(gt, 'p5', fl.image_rng(1, 'x'))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ValueError, match='mode'):
        fl.partial_label_map(gt, 'p7', fl.image_rng(0, 'x'))


def test_partial_labels_tool_on_voc_palette_pngs(voc_mini_root, tmp_path):
    ds = fl.build_label_dataset(voc_dataset_cfg(voc_mini_root))
    maps = fl.load_label_maps(ds)
    runs = []
    for run in range(2):
        out_dir = str(tmp_path / f'run{run}')
        written = fl.write_partial_labels(ds, 'p1', 0, out_dir)
        assert len(written) == len(maps)
        runs.append([Path(p).read_bytes() for p in written])
    assert runs[0] == runs[1]
    for (name, (info, gt)), path in zip(maps.items(), written):
        with Image.open(info['seg_map_path']) as src, Image.open(path) as im:
            assert im.mode == 'P' == src.mode
            assert im.getpalette() == src.getpalette()
            out = np.asarray(im)
        kept = out != 255
        assert kept.any() and np.all(out[kept] == gt[kept])
        for c in np.unique(gt[gt != 255]):
            assert (out == c).sum() >= max(1, int(0.01 * (gt == c).sum()))
    # the new directory loads as the dataset's labels
    part = fl.build_label_dataset(
        dict(voc_dataset_cfg(voc_mini_root),
             data_prefix=dict(img_path='JPEGImages',
                              seg_map_path=str(tmp_path / 'run0'))))
    assert len(part) == len(ds)


def test_partial_labels_cli(repo_root, aal_root, tmp_path):
    tool = load_tool('dataset_converters/reco_partial_labels.py')
    written = tool.main([
        osp.join(repo_root, AAL_CONFIG), '--mode', 'p0', '--seed', '0',
        '--out-dir', str(tmp_path), '--cfg-options',
        f'train_dataloader.dataset.data_root={aal_root}'
    ])
    assert len(written) > 20
    arr = np.asarray(Image.open(written[0]))
    gt = np.asarray(Image.open(osp.join(aal_root, 'ann_dir', 'train',
                                        osp.basename(written[0]))))
    assert (arr != 255).sum() == len(np.unique(gt))
