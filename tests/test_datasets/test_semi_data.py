"""Unlabelled image dataset, strong view packing, multi-source sampler and
the semi-supervised data preprocessor."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import ConcatDataset, pseudo_collate
from mmseg.registry import DATA_SAMPLERS, DATASETS, MODELS
from PIL import Image


def _write_images(root, names, size=(20, 24), seg=False):
    for i, n in enumerate(names):
        img = np.full((*size, 3), 10 * i + 5, np.uint8)
        img[:, : size[1] // 2, 0] = 200
        Image.fromarray(img).save(osp.join(root, n + '.png'))
        if seg:
            lab = np.zeros(size, np.uint8)
            lab[size[0] // 2:] = 1
            Image.fromarray(lab).save(osp.join(root, n + '_lab.png'))


PIPE = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=(16, 16)),
    dict(type='StrongView', transforms=[
        dict(type='PhotoMetricDistortion', brightness_delta=60)]),
    dict(type='PackSemiInputs'),
]


def test_unlabeled_dataset_from_dir_and_split(tmp_path):
    names = ['b', 'a', 'c']
    _write_images(str(tmp_path), names)
    (tmp_path / 'notes.txt').write_text('not an image')
    ds = DATASETS.build(dict(type='UnlabeledImageDataset',
                             data_root=str(tmp_path), img_suffix='.png',
                             pipeline=PIPE))
    assert len(ds) == 3
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [osp.basename(d['img_path']) for d in infos] == \
        ['a.png', 'b.png', 'c.png']
    assert all(d['seg_map_path'] is None for d in infos)
    (tmp_path / 'unlabeled.txt').write_text('c\n\nb.png\n')
    ds2 = DATASETS.build(dict(type='UnlabeledImageDataset',
                              data_root=str(tmp_path), img_suffix='.png',
                              ann_file='unlabeled.txt', pipeline=PIPE))
    assert [osp.basename(ds2.get_data_info(i)['img_path'])
            for i in range(len(ds2))] == \
        ['c.png', 'b.png']
    item = ds2[0]
    sample = item['data_samples']
    assert 'gt_sem_seg' not in sample
    assert sample.metainfo['unlabeled'] is True
    assert item['inputs'].shape == (3, 16, 16)
    strong = sample.img_strong
    assert strong.shape == item['inputs'].shape
    assert not torch.equal(strong, item['inputs'])  # photometric change
    with pytest.raises(ValueError, match='found no image'):
        DATASETS.build(dict(type='UnlabeledImageDataset',
                            data_root=str(tmp_path), img_suffix='.jpg'))
    with pytest.raises(FileNotFoundError, match='split file'):
        DATASETS.build(dict(type='UnlabeledImageDataset',
                            data_root=str(tmp_path), img_suffix='.png',
                            ann_file='missing.txt'))


def test_strong_view_must_be_photometric(tmp_path):
    _write_images(str(tmp_path), ['a'])
    pipe = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='StrongView', transforms=[
            dict(type='RandomCrop', crop_size=(8, 8))]),
    ])
    with pytest.raises(ValueError, match='photometric only'):
        pipe(dict(img_path=str(tmp_path / 'a.png')))


def _concat(tmp_path, n_lab=5, n_unl=11):
    lab = [f'l{i}' for i in range(n_lab)]
    unl = [f'u{i}' for i in range(n_unl)]
    (tmp_path / 'img').mkdir()
    (tmp_path / 'ann').mkdir()
    _write_images(str(tmp_path / 'img'), lab + unl)
    for n in lab:
        lab_img = np.zeros((20, 24), np.uint8)
        lab_img[10:] = 1
        Image.fromarray(lab_img).save(str(tmp_path / 'ann' / (n + '.png')))
    (tmp_path / 'lab.txt').write_text('\n'.join(lab))
    (tmp_path / 'unl.txt').write_text('\n'.join(unl))
    labelled = dict(
        type='BaseSegDataset', data_root=str(tmp_path), ann_file='lab.txt',
        img_suffix='.png', seg_map_suffix='.png',
        metainfo=dict(classes=('a', 'b')),
        data_prefix=dict(img_path='img', seg_map_path='ann'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='RandomCrop', crop_size=(16, 16)),
            dict(type='PackSegInputs')
        ])
    unlabelled = dict(
        type='UnlabeledImageDataset', data_root=str(tmp_path),
        ann_file='unl.txt', img_suffix='.png', data_prefix=dict(
            img_path='img'), pipeline=PIPE)
    return ConcatDataset([labelled, unlabelled],
                         ignore_keys=['classes', 'palette'])


def test_multi_source_sampler_ratio_seed_and_ranks(tmp_path):
    dataset = _concat(tmp_path)
    cfg = dict(type='MultiSourceSampler', dataset=dataset, batch_size=5,
               source_ratio=[2, 3], seed=7)
    sampler = DATA_SAMPLERS.build(cfg)
    assert sampler.num_per_source == [2, 3]
    it = iter(sampler)
    idx = [next(it) for _ in range(5 * 40)]
    batches = np.array(idx).reshape(40, 5)
    assert (batches[:, :2] < 5).all() and (batches[:, 2:] >= 5).all()
    # every labelled image is used equally often (seeded permutations)
    counts = np.bincount(batches[:, :2].ravel(), minlength=5)
    assert (counts == 16).all()
    # same seed, same stream; another seed, another one
    it2 = iter(DATA_SAMPLERS.build(cfg))
    assert [next(it2) for _ in range(200)] == idx
    it3 = iter(DATA_SAMPLERS.build({**cfg, 'seed': 8}))
    assert [next(it3) for _ in range(200)] != idx
    # DDP: rank r takes every world_size-th element of each source stream
    ranks = []
    for r in range(2):
        s = DATA_SAMPLERS.build(cfg)
        s.rank, s.world_size = r, 2
        it_r = iter(s)
        ranks.append(np.array([next(it_r) for _ in range(5 * 5)]).reshape(
            5, 5))
    first_lab = batches[:5, :2].ravel()  # rank-0 stream when world size 1
    merged = np.empty(20, int)
    merged[0::2] = ranks[0][:, :2].ravel()
    merged[1::2] = ranks[1][:, :2].ravel()
    assert (merged[:10] == first_lab).all()
    with pytest.raises(ValueError, match='source_ratio has 3'):
        DATA_SAMPLERS.build({**cfg, 'source_ratio': [1, 1, 1]})
    with pytest.raises(TypeError, match='ConcatDataset'):
        DATA_SAMPLERS.build({**cfg, 'dataset': list(range(10))})


def test_loader_and_preprocessor_split_batch(tmp_path):
    dataset = _concat(tmp_path)
    sampler = DATA_SAMPLERS.build(dict(
        type='MultiSourceSampler', dataset=dataset, batch_size=4,
        source_ratio=[1, 1], seed=0))
    loader = torch.utils.data.DataLoader(dataset, batch_size=4,
                                         sampler=sampler,
                                         collate_fn=pseudo_collate)
    data = next(iter(loader))
    assert sum('gt_sem_seg' in d for d in data['data_samples']) == 2
    pre = MODELS.build(dict(type='SemiDataPreProcessor', mean=[0., 0., 0.],
                            std=[1., 1., 1.], bgr_to_rgb=True,
                            size=(16, 16)))
    weak_raw = [x for x, d in zip(data['inputs'], data['data_samples'])
                if 'gt_sem_seg' not in d]
    out = pre(data, training=True)
    inputs, samples = out['inputs'], out['data_samples']
    assert inputs['sup'].shape == (2, 3, 16, 16)
    assert inputs['unsup_weak'].shape == (2, 3, 16, 16)
    assert inputs['unsup_strong'].shape == (2, 3, 16, 16)
    assert torch.equal(inputs['unsup_weak'][0],
                       weak_raw[0][[2, 1, 0]].float())  # bgr -> rgb
    assert not torch.equal(inputs['unsup_strong'], inputs['unsup_weak'])
    assert len(samples['sup']) == 2 and len(samples['unsup']) == 2
    assert all(d.metainfo['unlabeled'] for d in samples['unsup'])
    assert all(not d.metainfo.get('unlabeled', False)
               for d in samples['sup'])
    assert all('img_strong' not in d for d in samples['unsup'])
    assert all(d.gt_sem_seg.data.shape == (1, 16, 16)
               for d in samples['sup'])
    # test mode: a plain SegDataPreProcessor
    test_batch = dict(inputs=[torch.zeros(3, 16, 16, dtype=torch.uint8)],
                      data_samples=None)
    assert pre(test_batch, training=False)['inputs'].shape == (1, 3, 16, 16)
