# Cityscapes at half resolution as in ReCo: images resized to 1024x512,
# 512x512 crops without rescaling, batch 2 + 2, evaluation on the 500 val
# images at 1024x512 (predictions are upsampled to the full-resolution
# ground truth by mmseg; ReCo scores half-resolution labels). Labelled /
# unlabelled subsets: split files under data/cityscapes/splits/ with ids
# like ``aachen/aachen_000000_000019`` (mmseg's CityscapesDataset
# ``ann_file`` format).
_base_ = ['./reco_dataloaders.py']
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
crop_size = (512, 512)
num_classes = 19
labeled_batch = 2
unlabeled_batch = 2
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='StrongView', transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='PackSemiInputs')
]
# ReCo's augmentation of the pseudo-labelled batch: scale_size (1.0, 1.0)
# for Cityscapes, i.e. no rescale (build_data.py batch_transform)
reco_unsup_aug = dict(scale=(1.0, 1.0))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
labeled_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(
        img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
    ann_file='splits/labeled_20_seed0.txt',
    pipeline=train_pipeline)
unlabeled_dataset = dict(
    type='UnlabeledImageDataset',
    data_root=data_root,
    data_prefix=dict(img_path='leftImg8bit/train'),
    img_suffix='_leftImg8bit.png',
    ann_file='splits/unlabeled_20_seed0.txt',
    pipeline=unlabeled_pipeline)
train_dataloader = dict(
    batch_size=labeled_batch + unlabeled_batch,  # supervised: 4 (ReCo)
    dataset=labeled_dataset)
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
