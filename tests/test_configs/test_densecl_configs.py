"""configs/densecl: pre-training configs run mmpretrain's (checked) DenseCL
on mmseg datasets' images; fine-tuning configs load converted DenseCL weights
with zero missing backbone keys."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmseg_contrast  # noqa: F401
from mmseg_contrast.converters.densecl import (
    PartialLoadError,
    convert_densecl_checkpoint,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', 'densecl')
PRETRAIN = sorted(glob.glob(osp.join(CFG_DIR, 'densecl_*.py')))
# mmpretrain's ImageNet linear-probe benchmark (a classification config)
LINEAR_PROBE = sorted(glob.glob(osp.join(CFG_DIR, '*-linear-*.py')))
FINETUNE = sorted(
    set(glob.glob(osp.join(CFG_DIR, '*.py'))) - set(PRETRAIN) -
    set(LINEAR_PROBE))
AAL_PRE = osp.join(CFG_DIR, 'densecl_mnv2_1xb16-coslr-1k_aal-128x128.py')
AAL_FT = osp.join(CFG_DIR, 'deeplabv3_mnv2_densecl-aal-pre_aal_cpu.py')
VOC_FCN = osp.join(CFG_DIR,
                   'fcn_r50-d8_densecl-in1k-pre_4xb4-20k_voc12aug-512x512.py')


def test_config_sets_are_found():
    assert len(PRETRAIN) >= 5 and len(FINETUNE) >= 6
    assert AAL_PRE in PRETRAIN and AAL_FT in FINETUNE and VOC_FCN in FINETUNE


@pytest.mark.parametrize('path', PRETRAIN, ids=osp.basename)
def test_pretrain_configs(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert 'mmseg_contrast' in cfg.custom_imports['imports']
    assert cfg.model.type == 'CheckedDenseCL'
    assert any(h['type'] == 'DenseCLCheckHook' for h in cfg.custom_hooks)
    assert cfg.model.neck.out_channels == cfg.model.feat_dim
    # queue_len % global batch == 0 for the GPU count in the name
    m = re.search(r'_(\d+)xb(\d+)', osp.basename(path))
    gpus, bs = int(m.group(1)), int(m.group(2))
    assert bs == cfg.train_dataloader.batch_size
    assert cfg.model.queue_len % (gpus * bs) == 0
    assert cfg.train_dataloader.get('drop_last', False) or \
        cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    ds = cfg.train_dataloader.dataset
    if ds.type == 'SegImagesDataset':  # images of an mmseg dataset
        from mmseg.registry import DATASETS
        segs = ds.seg_dataset if isinstance(ds.seg_dataset,
                                            list) else [ds.seg_dataset]
        with DefaultScope.overwrite_default_scope('mmseg'):
            assert all(DATASETS.get(s['type']) is not None for s in segs)


def test_aal_demo_queue_lr_and_logging():
    """The CPU demo's queue fits 82 images, its lr is MoCo's 0.03 / 256
    scaled to the batch, and the iteration schedule logs iterations."""
    from mmseg_contrast.selfsup.densecl import own_image_in_queue_prob
    cfg = Config.fromfile(AAL_PRE)
    bs = cfg.train_dataloader.batch_size
    assert own_image_in_queue_prob(82, cfg.model.queue_len, bs) <= 0.05
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.03 * bs / 256)
    assert cfg.log_processor.by_epoch is False
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'


@pytest.mark.parametrize('path', FINETUNE, ids=osp.basename)
def test_finetune_configs(path):
    cfg = Config.fromfile(path)
    assert cfg.model.pretrained is None
    bb = cfg.model.backbone
    assert bb.type in ('ResNet', 'MobileNetV2')  # never ResNetV1c
    if 'random-init' in path:
        assert bb.init_cfg is None
    else:
        assert bb.init_cfg.type == 'Pretrained'
        assert bb.init_cfg.get('prefix') is None  # converted: no prefix


def _fake_mmpretrain_ckpt(backbone_cfg):
    """An mmpretrain-1.x DenseCL checkpoint around the given backbone."""
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        bb = MODELS.build(backbone_cfg)
    for p in bb.parameters():
        torch.nn.init.normal_(p)
    sd = {'backbone.' + k: v for k, v in bb.state_dict().items()}
    sd.update({'encoder_k.module.0.' + k: torch.zeros_like(v)
               for k, v in bb.state_dict().items()})
    sd.update(queue=torch.randn(4, 8), queue_ptr=torch.zeros(1).long(),
              neck=torch.zeros(1))
    return {'state_dict': sd}


def _assert_loaded(model_bb, converted):
    sd = model_bb.state_dict()
    assert set(sd) == set(converted)  # zero missing, zero unexpected
    for k, v in converted.items():
        assert torch.equal(sd[k], v), k


def test_voc_fcn_loads_converted_r50(tmp_path):
    ckpt = _fake_mmpretrain_ckpt(
        dict(type='ResNet', depth=50, out_indices=(3, ),
             zero_init_residual=False))
    dst = str(tmp_path / 'r50.pth')
    out, rep = convert_densecl_checkpoint(ckpt, dst, backbone_cfg=VOC_FCN)
    assert rep.is_complete and len(out['state_dict']) == sum(
        k.startswith('backbone.') for k in ckpt['state_dict'])
    cfg = Config.fromfile(VOC_FCN)
    bb_cfg = dict(cfg.model.backbone)
    bb_cfg['norm_cfg'] = dict(type='BN', requires_grad=True)
    bb_cfg['init_cfg'] = dict(bb_cfg['init_cfg'], checkpoint=dst)
    from mmseg.registry import MODELS
    bb = MODELS.build(bb_cfg)
    bb.init_weights()
    _assert_loaded(bb, out['state_dict'])
    # the stock mmseg FCN (ResNetV1c deep stem) is refused
    with pytest.raises(PartialLoadError, match='deep stem'):
        convert_densecl_checkpoint(
            ckpt, backbone_cfg='mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-'
            '512x512.py')


def test_aal_pretrain_to_finetune(tmp_path, aal_root):
    """The demo chain: model + data of the AAL pre-training config, its
    checkpoint converted, loaded by the fine-tuning segmentor."""
    from mmpretrain.registry import DATASETS as PRE_DATASETS
    from mmpretrain.registry import MODELS as PRE_MODELS
    pre = Config.fromfile(AAL_PRE)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = PRE_MODELS.build(pre.model)
        ds = PRE_DATASETS.build(pre.train_dataloader.dataset)
    views = ds[0]['inputs']
    assert len(views) == 2 and views[0].shape == (3, 128, 128)
    assert len(ds) >= pre.train_dataloader.batch_size
    dst = str(tmp_path / 'mnv2.pth')
    out, rep = convert_densecl_checkpoint(
        {'meta': {}, 'state_dict': model.state_dict()}, dst,
        backbone_cfg=AAL_FT, ignore_unexpected=['conv2.*'])
    assert rep.missing == [] and len(rep.ignored_unexpected) == 6
    ft = Config.fromfile(AAL_FT)
    ft.model.backbone.init_cfg.checkpoint = dst
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = MODELS.build(ft.model)
    seg.init_weights()
    _assert_loaded(seg.backbone, out['state_dict'])
