# DenseCL pre-training (mmpretrain 1.2.0's DenseCL, checked by
# CheckedDenseCL / DenseCLCheckHook) of the CPU demos' MobileNetV2 on the
# images of an mmseg dataset in the img_dir/ann_dir layout (labels unused):
# model (feature dim 128, MoCo m = 0.99, loss_lambda 0.5, temperature 0.2),
# SGD with weight decay 1e-4, one worker, fork start, fixed seed. Shared by
# densecl/densecl_mnv2_1xb16-coslr-1k_aal-128x128.py and
# bench/densecl_mnv2_1xb32-coslr-1200it_fashion-64x64.py, which add the
# backbone variant, queue, views, data, batch size, lr and schedule.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)
default_scope = 'mmpretrain'

model = dict(
    type='CheckedDenseCL',
    feat_dim=128,
    momentum=0.01,  # mmengine EMA convention: MoCo m = 0.99 (short schedule)
    loss_lambda=0.5,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
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
train_dataloader = dict(
    num_workers=1,
    persistent_workers=True,
    drop_last=True,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='SegImagesDataset',
        seg_dataset=dict(
            data_prefix=dict(
                img_path='img_dir/train', seg_map_path='ann_dir/train'))))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', weight_decay=1e-4, momentum=0.9))
custom_hooks = [dict(type='DenseCLCheckHook')]
# iteration-based schedule: log iterations, not (meaningless) epochs
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, max_keep_ckpts=1))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
find_unused_parameters = True
randomness = dict(seed=0)
