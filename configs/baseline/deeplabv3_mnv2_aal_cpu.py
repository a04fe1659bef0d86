# CPU demo baseline: stock mmseg DeepLabV3 (ASPPHead) on the ImageNet
# MobileNetV2 backbone (mmseg's mobilenet-v2-d8 wiring: output stride 8),
# trained on Colin27 + AAL axial slices (16 classes) on a 2-core CPU.
# Prepare data + weights first: `make data`. Run: `python tools/run_demo.py`.
# Contrastive variants inherit this file and replace `decode_head`.
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py',
    '../_base_/datasets/aal_slices.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

num_classes = 16
crop_size = (160, 160)
norm_cfg = dict(type='BN', requires_grad=True)  # single process: no SyncBN
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.,
        strides=(1, 2, 2, 1, 1, 1, 1),
        dilations=(1, 1, 1, 2, 2, 4, 4),
        out_indices=(1, 2, 4, 6),
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrain/mobilenet_v2_imagenet_mmseg.pth')),
    decode_head=dict(
        in_channels=320,
        channels=128,
        # mmseg's (1, 12, 24, 36) is for 64x64 feature maps (512 crops);
        # scaled to the 20x20 maps of 160x160 crops.
        dilations=(1, 4, 8, 12),
        num_classes=num_classes,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=96,
        channels=64,
        num_classes=num_classes,
        norm_cfg=norm_cfg))

# Short CPU schedule (poly LR, SGD as in mmseg).
max_iters = 600
optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
