# Accuracy suite (make bench-accuracy), supervised-only / CE-only arm:
# stock mmseg DeepLabV3 (ASPPHead + FCN auxiliary head) on the ImageNet
# MobileNetV2 backbone, trained on the 20 labelled canvases of the
# Fashion-canvas set (ReCo's class-balanced selection, >= 3 classes each,
# split seed 0), batch 8, 64x64 canvases, output stride 4 (16x16 features).
# Every other arm of the suite inherits this file and changes only its method.
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py',
    '../_base_/datasets/fashion_canvas.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

num_classes = 11
crop_size = (64, 64)
labeled_split = 'splits/train_labeled_20_seed0.txt'
unlabeled_split = 'splits/train_unlabeled_20_seed0.txt'
labeled_batch = 8
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.,
        # output stride 4: a 28-pixel item spans ~7 feature cells
        strides=(1, 1, 2, 1, 1, 1, 1),
        dilations=(1, 1, 1, 2, 2, 4, 4),
        out_indices=(1, 2, 4, 6),
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrain/mobilenet_v2_imagenet_mmseg.pth')),
    decode_head=dict(
        in_channels=320,
        channels=128,
        dilations=(1, 2, 4, 6),  # scaled to the 16x16 feature map
        num_classes=num_classes,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=96,
        channels=64,
        num_classes=num_classes,
        norm_cfg=norm_cfg))

max_iters = 400
optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
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
log_processor = dict(by_epoch=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
train_dataloader = dict(
    batch_size=labeled_batch,
    dataset=dict(ann_file=labeled_split))
