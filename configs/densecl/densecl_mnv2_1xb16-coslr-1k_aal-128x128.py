# DenseCL pre-training (mmpretrain 1.2.0's DenseCL, checked by
# CheckedDenseCL/DenseCLCheckHook) of the demo's MobileNetV2 on the *images*
# of the AAL slice dataset (labels unused), on CPU.
#   python tools/train.py \
#       configs/densecl/densecl_mnv2_1xb16-coslr-1k_aal-128x128.py
# or the whole demo (pre-train, convert, fine-tune, evaluate):
#   python tools/run_densecl_demo.py
# Runs in mmpretrain's scope with mmpretrain's MobileNetV2 (same parameter
# names as mmseg's, plus the classification `conv2.*`, unused here and
# dropped explicitly at conversion: --ignore-unexpected 'conv2.*'), so the
# converted weights load into the fine-tuning config with zero missing keys.
# Pre-trained at output stride 32 (4x4 dense grid for 128x128 crops); the
# weights do not depend on the strides/dilations fine-tuning uses.
_base_ = ['./_base_/densecl_mnv2_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

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

model = dict(queue_len=queue_len, backbone=dict(type='MobileNetV2'))

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
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        seg_dataset=dict(type='AALSliceDataset', data_root='data/aal_slices'),
        pipeline=train_pipeline))

optim_wrapper = dict(optimizer=dict(lr=lr))
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
default_hooks = dict(
    logger=dict(interval=25), checkpoint=dict(interval=max_iters))
