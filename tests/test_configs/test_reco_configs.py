"""Every config in configs/reco parses and builds its model (on the meta
device: no memory, no pretrained weights); the semi-supervised ones are wired
to the mean-teacher pieces, and the demo trio trains at equal iterations."""
import copy
import functools
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from helpers.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'reco', '*.py')))
DEMO = {
    name: osp.join(REPO, 'configs', 'reco',
                   f'deeplabv3_mnv2_{name}_5pct-aal_cpu.py')
    for name in ('sup-only', 'meanteacher-classmix', 'reco-classmix')
}


@functools.lru_cache(maxsize=None)
def _parse(path):
    return Config.fromfile(path)


def _load(path):
    return copy.deepcopy(_parse(path))


def test_folder_has_the_expected_configs():
    names = {osp.basename(c) for c in CONFIGS}
    for data, counts in (('voc12aug', (60, 200, 600)),
                         ('cityscapes-half', (20, 50, 150)),
                         ('sunrgbd', (50, 150, 500))):
        for n in counts:
            for kind in ('sup-reco', 'reco-classmix'):
                assert any(c.startswith(kind) and f'{data}-{n}labels' in c
                           for c in names), (kind, data, n)
    assert all(osp.isfile(p) for p in DEMO.values())


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses_and_builds(path):
    from mmseg_contrast.models.segmentors import SemiSegmentor
    cfg = _load(path)
    assert cfg.custom_imports['imports'] == ['mmseg_contrast']
    model_cfg = cfg.model.copy()
    semi = model_cfg.type == 'SemiSegmentor'
    seg = model_cfg.segmentor if semi else model_cfg
    seg.pop('pretrained', None)
    if seg.backbone.get('init_cfg') is not None:
        seg.backbone.init_cfg = None
    # what mmengine's Runner does with the top-level data_preprocessor
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    name = osp.basename(path)
    wants_reco = 'reco' in name and 'meanteacher' not in name \
        and 'sup-only' not in name
    head = model.student.decode_head if semi else model.decode_head
    assert hasattr(head, 'reco_loss') == wants_reco
    if not semi:
        return
    assert isinstance(model, SemiSegmentor)
    assert type(model.data_preprocessor).__name__ == 'SemiDataPreProcessor'
    assert model.semi_train_cfg['mix_mode'] == 'classmix'
    assert [h['type'] for h in cfg.custom_hooks] == ['MeanTeacherHook']
    assert cfg.val_cfg.type == 'TeacherStudentValLoop'
    loader = cfg.train_dataloader
    assert loader.sampler.type == 'MultiSourceSampler'
    assert loader.sampler.batch_size == loader.batch_size
    types = [d['type'] for d in loader.dataset.datasets]
    assert types[1] == 'UnlabeledImageDataset'
    lab, unl = (d['ann_file'] for d in loader.dataset.datasets)
    assert 'unlabeled' in unl and 'unlabeled' not in lab
    hook = cfg.custom_hooks[0]
    if 'aal' in name:  # short demo schedule: a teacher window that fits it
        assert hook.get('decay_schedule') == 'horizon'
        assert 0 < hook['horizon'] <= 0.2
        assert model.unsup_aug is None  # demo: backward-compatible, off
    else:  # paper configs: ReCo's decay and batch augmentation
        assert hook.get('decay_schedule', 'reco') == 'reco'
        assert hook.get('max_decay', 0.99) == 0.99
        aug = model.unsup_aug
        assert aug is not None
        scale = (1., 1.) if 'cityscapes' in name else (0.5, 1.5)
        assert aug.scale == scale
        assert (aug.blur_prob, aug.blur_sigma, aug.flip_prob) == (
            0.5, (0.15, 1.15), 0.5)
        assert aug.crop_size is None


def test_demo_trio_equal_iterations_and_labelled_batch():
    cfgs = {k: _load(v) for k, v in DEMO.items()}
    iters = {k: c.train_cfg.max_iters for k, c in cfgs.items()}
    assert len(set(iters.values())) == 1
    sup = cfgs['sup-only'].train_dataloader
    for k in ('meanteacher-classmix', 'reco-classmix'):
        loader = cfgs[k].train_dataloader
        ratio = loader.sampler.source_ratio
        n_lab = loader.batch_size * ratio[0] // sum(ratio)
        assert n_lab == sup.batch_size
        assert loader.dataset.datasets[0].ann_file == sup.dataset.ann_file


def test_demo_semi_dataset_builds(aal_root):
    """The AAL demo's labelled + unlabelled loader on the real slices."""
    from mmengine.runner import Runner
    cfg = _load(DEMO['reco-classmix'])
    split_dir = osp.join(aal_root, 'splits')
    lab = osp.join(split_dir, 'train_labeled_5pct_seed0.txt')
    unl = osp.join(split_dir, 'train_unlabeled_5pct_seed0.txt')
    if not (osp.isfile(lab) and osp.isfile(unl)):  # the documented command
        tool = load_tool('dataset_converters/reco_partial_dataset.py')
        tool.main([
            osp.join(REPO, 'configs', 'baseline', 'deeplabv3_mnv2_aal_cpu.py'),
            '--fraction', '0.05', '--min-classes', '1', '--seed', '0',
            '--labeled-file', lab, '--unlabeled-file', unl,
            '--cfg-options', f'train_dataloader.dataset.data_root={aal_root}'
        ])
    with open(lab) as f:
        assert len(f.read().split()) == 4  # 5 % of the 82 training slices
    for d in cfg.train_dataloader.dataset.datasets:
        d.data_root = aal_root
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batch = next(iter(loader))
    flags = ['gt_sem_seg' in d for d in batch['data_samples']]
    assert flags == [True] * 4 + [False] * 4
