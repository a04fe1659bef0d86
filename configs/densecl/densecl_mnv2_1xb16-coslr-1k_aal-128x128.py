# DenseCL pre-training (mmpretrain 1.2.0's DenseCL, checked by
# CheckedDenseCL/DenseCLCheckHook) of the demo's MobileNetV2 on the *images*
# of the AAL slice dataset (labels unused), on CPU.
#   python tools/train.py configs/densecl/densecl_mnv2_1xb16-coslr-1k_aal-128x128.py
# or the whole demo (pre-train, convert, fine-tune, evaluate):
#   python tools/run_densecl_demo.py
# Runs in mmpretrain's scope with mmpretrain's MobileNetV2 (same parameter
# names as mmseg's, plus the classification `conv2.*`, unused here and
# dropped explicitly at conversion: --ignore-unexpected 'conv2.*'), so the
# converted weights load into the fine-tuning config with zero missing keys.
# Pre-trained at output stride 32 (4x4 dense grid for 128x128 crops); the
# weights do not depend on the strides/dilations fine-tuning uses.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)
default_scope = 'mmpretrain'

crop = 128  # 4x4 dense grid at output stride 32 (7x7 at 224 in the paper)
batch_size = 16
# Negative queue sized to the dataset (82 images), not to ImageNet: a queue of
# 64 holds a key of the query's own image (a false negative) for 38 % of the
# queries, a queue of one batch (16) for 3.8 % (ImageNet's 65536 over 1.28M
# images: 0.13 %); DenseCLCheckHook warns above 5 %. See README.md.
queue_len = 16
# MoCo v2 / DenseCL (ImageNet): SGD lr 0.03 per 256 images, scaled linearly
# to the batch (0.001875 at 16; the earlier 0.05 was ~27x that).
base_lr = 0.03
lr = base_lr * batch_size / 256
max_iters = 1000

model = dict(
    type='CheckedDenseCL',
    queue_len=queue_len,
    feat_dim=128,
    momentum=0.01,  # mmengine EMA convention: MoCo m = 0.99 (short schedule)
    loss_lambda=0.5,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='MobileNetV2',
        widen_factor=1.,
        out_indices=(6, ),  # layer7 (320 ch); 7 would be conv2 (1280 ch)
        norm_cfg=dict(type='BN', requires_grad=True)),
    neck=dict(
        type='DenseCLNeck',
        in_channels=320,
        hid_channels=512,
        out_channels=128,
        num_grid=None),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))

# MoCo-v2 views, adapted to grey T1 slices: no saturation/hue jitter and no
# grayscale (no-ops on a grey image), no flip (left/right hemispheres are
# different classes downstream).
view_pipeline = [
    dict(
        type='RandomResizedCrop',
        scale=crop,
        crop_ratio_range=(0.2, 1.),
        backend='pillow'),
    dict(
        type='RandomApply',
        transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4)],
        prob=0.8),
    dict(
        type='GaussianBlur',
        magnitude_range=(0.1, 2.0),
        magnitude_std='inf',
        prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='SegImagesDataset',
        seg_dataset=dict(
            type='AALSliceDataset',
            data_root='data/aal_slices',
            data_prefix=dict(
                img_path='img_dir/train', seg_map_path='ann_dir/train')),
        pipeline=train_pipeline))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=lr, weight_decay=1e-4, momentum=0.9))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=False,
        begin=0,
        end=50),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - 50,
        by_epoch=False,
        begin=50,
        end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
custom_hooks = [dict(type='DenseCLCheckHook')]
# iteration-based schedule: log iterations, not (meaningless) epochs
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
find_unused_parameters = True
randomness = dict(seed=0)
