"""AALSliceDataset: class grouping, metainfo, loading through the config's
pipelines."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmseg_contrast.datasets.aal_slices import (
    AAL_CLASSES,
    AAL_PALETTE,
    AALSliceDataset,
    aal_region_to_class,
)
from mmseg_contrast.tooling import offline_data

DATASET_CFG = 'configs/_base_/datasets/aal_slices.py'


def test_metainfo():
    assert AALSliceDataset.METAINFO['classes'] == AAL_CLASSES
    assert len(AAL_CLASSES) == 16 and AAL_CLASSES[0] == 'background'
    assert len(set(AAL_CLASSES)) == 16
    assert len(AAL_PALETTE) == 16
    assert len({tuple(c) for c in AAL_PALETTE}) == 16  # distinct colours
    assert all(0 <= v <= 255 for c in AAL_PALETTE for v in c)


@pytest.mark.parametrize('name,code,cls', [
    ('Precentral_L', 2001, 'frontal_L'),
    ('Rectus_R', 2702, 'frontal_R'),
    ('Insula_R', 3002, 'limbic_insula_R'),
    ('Hippocampus_L', 4101, 'limbic_insula_L'),
    ('Fusiform_L', 5401, 'occipital_L'),
    ('Postcentral_R', 6002, 'parietal_R'),
    ('Thalamus_R', 7102, 'subcortical_R'),
    ('Temporal_Pole_Mid_L', 8211, 'temporal_L'),
    ('Cerebelum_Crus1_R', 9002, 'cerebellum_R'),
    ('Vermis_4_5', 9120, 'vermis'),
])
def test_region_to_class(name, code, cls):
    assert AAL_CLASSES[aal_region_to_class(name, code)] == cls


def test_region_to_class_errors():
    with pytest.raises(ValueError, match='family 1'):
        aal_region_to_class('Odd_L', 1001)
    with pytest.raises(ValueError, match='_L or _R'):
        aal_region_to_class('Precentral', 2001)


def test_all_aal_regions_grouped(aal_root):
    """All 116 regions of the real aal.nii.txt map to a non-background class
    and every class receives at least one region."""
    tpl = osp.join(offline_data.fetch_deb(offline_data.MRICRON_DEB),
                   offline_data.MRICRON_TEMPLATES)
    regions = offline_data.parse_aal_txt(osp.join(tpl, 'aal.nii.txt'))
    assert len(regions) == 116
    cls = np.array([aal_region_to_class(n, c) for _, n, c in regions])
    assert cls.min() >= 1
    assert np.bincount(cls, minlength=16)[1:].min() >= 1


def test_reduce_zero_label_rejected(aal_root):
    with pytest.raises(ValueError, match='reduce_zero_label'):
        AALSliceDataset(
            data_root=aal_root,
            data_prefix=dict(img_path='img_dir/val',
                             seg_map_path='ann_dir/val'),
            reduce_zero_label=True)


def test_dataset_config_loads(aal_root, repo_root):
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(osp.join(repo_root, DATASET_CFG))
    # Left and right hemispheres are separate classes: no flipping.
    assert not any(t['type'] == 'RandomFlip' for t in cfg.train_pipeline)
    sizes = {}
    for split in ('train', 'val'):
        dcfg = cfg[f'{split}_dataloader'].dataset.copy()
        dcfg.data_root = aal_root
        ds = DATASETS.build(dcfg)
        sizes[split] = len(ds)
        assert ds.metainfo['classes'] == AAL_CLASSES
        out = ds[len(ds) // 2]
        inputs, gt = out['inputs'], out['data_samples'].gt_sem_seg.data
        assert inputs.dtype == torch.uint8 and inputs.shape[0] == 3
        # the grey T1 is loaded as 3 identical channels
        assert torch.equal(inputs[0], inputs[1])
        if split == 'train':
            # random rescale (0.75-1.5) + crop: at most the crop size (the
            # width can be smaller at scale < 0.88; the data preprocessor
            # pads it), the height (>= 0.75 * 217) always fills the crop
            h, w = inputs.shape[1:]
            assert h == cfg.crop_size[0] and w <= cfg.crop_size[1]
            assert len(gt.unique()) >= 2
        else:
            assert tuple(inputs.shape[1:]) == (217, 181)
            assert len(gt.unique()) > 8
        assert gt.shape[1:] == inputs.shape[1:]
        assert 0 <= gt.min() and gt.max() < len(AAL_CLASSES)
    assert sizes == dict(train=82, val=32)
