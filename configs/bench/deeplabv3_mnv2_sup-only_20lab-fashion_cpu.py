# Accuracy suite (make bench-accuracy), supervised-only / CE-only arm:
# stock mmseg DeepLabV3 (ASPPHead + FCN auxiliary head) on the ImageNet
# MobileNetV2 backbone, trained on the 20 labelled canvases of the
# Fashion-canvas set (ReCo's class-balanced selection, >= 3 classes each,
# split seed 0), batch 8, 64x64 canvases, output stride 4 (16x16 features).
# Every other arm of the suite inherits this file and changes only its method.
_base_ = [
    '../_base_/models/deeplabv3_mnv2-d8.py',
    '../_base_/datasets/fashion_canvas.py',
    '../_base_/cpu_runtime.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

num_classes = 11
crop_size = (64, 64)
labeled_split = 'splits/train_labeled_20_seed0.txt'
unlabeled_split = 'splits/train_unlabeled_20_seed0.txt'
labeled_batch = 8
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    # output stride 4: a 28-pixel item spans ~7 feature cells
    backbone=dict(strides=(1, 1, 2, 1, 1, 1, 1)),
    decode_head=dict(
        dilations=(1, 2, 4, 6),  # scaled to the 16x16 feature map
        num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))

max_iters = 400
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
train_dataloader = dict(
    batch_size=labeled_batch,
    dataset=dict(ann_file=labeled_split))
