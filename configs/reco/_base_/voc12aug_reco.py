# Pascal VOC 2012 + SBD ("aug", 10,582 training images) as in ReCo: 321x321
# crops, labelled scale range (0.5, 1.5), evaluation on the 1,449 val images
# at their own size. Labelled / unlabelled subsets come from split files
# (one image id per line) under data/VOCdevkit/VOC2012/splits/, e.g. from
# the partial-dataset tool (ReCo's class-balanced selection from train_aug).
# SegmentationClassAug must hold the labels of every train_aug image
# (mmseg's tools/dataset_converters/voc_aug.py).
_base_ = ['./reco_dataloaders.py']
dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (321, 321)
num_classes = 21
labeled_batch = 10
unlabeled_batch = 10
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(500, 500), ratio_range=(0.5, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
# ReCo's unlabelled loader: pad + crop only (weak view); the strong view
# adds the photometric jitter; ClassMix happens on the batch.
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='StrongView', transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='PackSemiInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
labeled_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(
        img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
    ann_file='splits/labeled_60_seed0.txt',
    pipeline=train_pipeline)
unlabeled_dataset = dict(
    type='UnlabeledImageDataset',
    data_root=data_root,
    data_prefix=dict(img_path='JPEGImages'),
    img_suffix='.jpg',
    ann_file='splits/unlabeled_60_seed0.txt',
    pipeline=unlabeled_pipeline)
train_dataloader = dict(
    batch_size=labeled_batch + unlabeled_batch,  # supervised: 20 (ReCo)
    dataset=labeled_dataset)
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
