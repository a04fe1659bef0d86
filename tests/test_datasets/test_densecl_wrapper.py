"""SegImagesDataset: the images of mmseg datasets for mmpretrain pipelines."""
import os.path as osp

import pytest
import torch
from mmengine.registry import DefaultScope

import mmseg_contrast  # noqa: F401


def _build(cfg):
    from mmpretrain.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return DATASETS.build(cfg)


def _voc(root, split):
    return dict(
        type='PascalVOCDataset',
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file=f'ImageSets/Segmentation/{split}.txt')


def _ids(root, split):
    with open(osp.join(root, 'ImageSets', 'Segmentation',
                       f'{split}.txt')) as f:
        return [line.strip() for line in f if line.strip()]


def test_voc_images_two_views(voc_mini_root):
    view = [dict(type='RandomResizedCrop', scale=48, backend='pillow')]
    ds = _build(
        dict(type='SegImagesDataset', seg_dataset=_voc(voc_mini_root, 'train'),
             pipeline=[dict(type='LoadImageFromFile'),
                       dict(type='MultiView', num_views=2,
                            transforms=[view]),
                       dict(type='PackInputs')]))
    ids = _ids(voc_mini_root, 'train')
    assert len(ds) == len(ids)
    assert [osp.basename(ds.get_data_info(i)['img_path'])
            for i in range(len(ds))] == [f'{i}.jpg' for i in ids]
    out = ds[0]
    views = out['inputs']
    assert len(views) == 2 and views[0].shape == (3, 48, 48)
    assert views[0].dtype == torch.uint8
    # labels unused: the packed sample carries no segmentation map
    assert 'gt_sem_seg' not in out['data_samples']


def test_concat_and_unique(voc_mini_root):
    train, val = _ids(voc_mini_root, 'train'), _ids(voc_mini_root, 'val')
    both = [_voc(voc_mini_root, 'train'), _voc(voc_mini_root, 'val')]
    ds = _build(dict(type='SegImagesDataset', seg_dataset=both))
    assert len(ds) == len(set(train) | set(val))
    ds_all = _build(
        dict(type='SegImagesDataset', seg_dataset=both, unique=False))
    assert len(ds_all) == len(train) + len(val)


def test_aal_slices_images(aal_root):
    ds = _build(
        dict(type='SegImagesDataset',
             seg_dataset=dict(
                 type='AALSliceDataset', data_root=aal_root,
                 data_prefix=dict(img_path='img_dir/train',
                                  seg_map_path='ann_dir/train')),
             pipeline=[dict(type='LoadImageFromFile')]))
    n = len([f for f in __import__('os').listdir(
        osp.join(aal_root, 'img_dir', 'train')) if f.endswith('.png')])
    assert len(ds) == n > 0
    assert ds[0]['img'].shape[:2] == (217, 181)


def test_bad_configs(voc_mini_root, tmp_path):
    with pytest.raises(TypeError, match="mmseg dataset config dict"):
        _build(dict(type='SegImagesDataset', seg_dataset='voc'))
    with pytest.raises(TypeError, match="takes no 'data_root'"):
        _build(dict(type='SegImagesDataset',
                    seg_dataset=_voc(voc_mini_root, 'train'),
                    data_root=voc_mini_root))
    with pytest.raises(KeyError, match='NoSuchDataset'):
        _build(dict(type='SegImagesDataset',
                    seg_dataset=dict(type='NoSuchDataset')))
    (tmp_path / 'img').mkdir()
    with pytest.raises(ValueError, match='has no images'):
        _build(dict(type='SegImagesDataset',
                    seg_dataset=dict(type='BaseSegDataset',
                                     data_root=str(tmp_path),
                                     data_prefix=dict(img_path='img'))))
