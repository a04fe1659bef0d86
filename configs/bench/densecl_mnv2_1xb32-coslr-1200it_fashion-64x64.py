# Accuracy suite, DenseCL pre-training (mmpretrain 1.2.0's DenseCL, checked by
# CheckedDenseCL / DenseCLCheckHook) of the suite's MobileNetV2 from random
# init on the images of the 1980 *unlabelled* Fashion-canvas training
# canvases (labels unused), on CPU.
#
# Settings sized to the data (see configs/bench/README.md):
# - backbone: mmseg's MobileNetV2 with the fine-tuning strides/dilations
#   (output stride 8 here: an 8x8 dense grid for 64x64 views), so the dense
#   loss has 64 positions per view and the weights load 1:1 into the
#   fine-tuning config;
# - queue 512 keys for 1980 images at batch 32: the queue spans 16 iterations
#   and each image is drawn once per 62-iteration epoch, so a query's own
#   image is in the queue only when it is drawn twice within 16 iterations
#   across an epoch boundary (about 16 / 62 * 16 / 62 = 7 % of queries at
#   most);
# - lr: DenseCL / MoCo-v2's 0.03 per 256 images scaled linearly to batch 32
#   is 0.00375; linear warm-up over the first 10 % of the schedule, then
#   cosine; 1200 iterations (~19 epochs, 13 min on the 2-core CPU). The
#   first protocol's 300 iterations (~5 epochs) left the instance loss on
#   its early plateau (3.07 -> 3.00 from iteration 50 to 300; 1200
#   iterations: 2.78) and the seed-0 fine-tune at val mIoU 19.18 (1200:
#   20.23; configs/bench/README.md).
_base_ = ['../densecl/_base_/densecl_mnv2_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

crop = 64
batch_size = 32
queue_len = 512
max_iters = 1200
warmup_iters = max_iters // 10
base_lr = 0.03 * batch_size / 256

model = dict(
    queue_len=queue_len,
    backbone=dict(
        type='SegMobileNetV2',  # mmseg MobileNetV2, tuple output
        strides=(1, 2, 2, 1, 1, 1, 1),
        dilations=(1, 1, 1, 2, 2, 4, 4)))

# MoCo-v2 views for grey canvases: no saturation / hue jitter or grayscale
# (no-ops on grey images); a horizontal flip preserves every class here.
view_pipeline = [
    dict(type='RandomResizedCrop', scale=crop, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4)],
         prob=0.8),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf',
         prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        seg_dataset=dict(
            type='FashionCanvasDataset',
            data_root='data/fashion_canvas',
            ann_file='splits/train_unlabeled_20_seed0.txt'),
        pipeline=train_pipeline))

optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters,
         by_epoch=False, begin=warmup_iters, end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=max_iters))
