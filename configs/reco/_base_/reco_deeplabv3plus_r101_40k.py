# ReCo's model and schedule in mmseg terms (reco.md §2): DeepLabV3+ on a
# torchvision-style ResNet-101 (plain stem, output stride 16, contracted
# dilation in layer4), ImageNet torchvision weights, no auxiliary head, BN
# (ReCo trains on one GPU), align_corners=True, and a ReCo representation
# head (conv3x3-BN-ReLU-conv1x1, 256-d, raw output) on the decoder feature.
# SGD Nesterov lr 2.5e-3, momentum 0.9, wd 5e-4, poly 0.9 down to 1e-6,
# 40k iterations.
#
# Differences from the reference that remain (see README.md):
# * mmseg's DepthwiseSeparableASPPHead (separable convs, two 3x3 bottleneck
#   convs) instead of ReCo's own ASPP/decoder; the representation head sits
#   on the 256-ch feature that enters the classifier, not on the 304-ch
#   concat beside the classifier's 3x3 conv;
# * the poly LR is stepped every iteration (ReCo steps it every 200);
# * conv_seg keeps mmseg's N(0, 0.01) init.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        depth=101,
        deep_stem=False,
        style='pytorch',
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        contract_dilation=True,
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet101')),
    decode_head=dict(
        type='ReCoDepthwiseSeparableASPPHead',
        channels=256,
        dilations=(1, 6, 12, 18),
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        align_corners=True,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            avg_non_ignore=True),
        proj_channels=256,
        reco_loss=dict(
            type='ReCoLoss',
            temperature=0.5,
            num_queries=256,
            num_negatives=512,
            strong_threshold=0.97,
            loss_weight=1.0)),
    auxiliary_head=None)

max_iters = 40000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=2.5e-3, momentum=0.9, weight_decay=5e-4,
        nesterov=True),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# ReCo reports the best validation mIoU over training
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=2000,
        max_keep_ckpts=2, save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
