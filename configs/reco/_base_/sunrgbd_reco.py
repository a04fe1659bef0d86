# SUN RGB-D (RGB only, 37 classes) as in ReCo. mmseg has no SUN RGB-D
# dataset class; this uses BaseSegDataset with the 37 class names and
# reduce_zero_label=True (SUN label 0 = unlabelled -> 255, 1..37 -> 0..36).
# The user must provide (e.g. from ReCo's dataset/sun_preprocess.py, which
# also resizes every image to 512x384):
#   data/sunrgbd/images/{train,test}/<id>.png    RGB images
#   data/sunrgbd/labels/{train,test}/<id>.png    uint8 labels 0..37
#   data/sunrgbd/splits/{labeled,unlabeled}_<N>_seed0.txt   ids, one a line
# (5,285 train / 5,050 test images).
_base_ = ['./reco_dataloaders.py']
dataset_type = 'BaseSegDataset'
data_root = 'data/sunrgbd'
crop_size = (321, 321)
num_classes = 37
labeled_batch = 5
unlabeled_batch = 5
sun_classes = ('wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table',
               'door', 'window', 'bookshelf', 'picture', 'counter', 'blinds',
               'desk', 'shelves', 'curtain', 'dresser', 'pillow', 'mirror',
               'floor_mat', 'clothes', 'ceiling', 'books', 'fridge', 'tv',
               'paper', 'towel', 'shower_curtain', 'box', 'whiteboard',
               'person', 'night_stand', 'toilet', 'sink', 'lamp', 'bathtub',
               'bag')
metainfo = dict(classes=sun_classes)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(512, 384), ratio_range=(0.5, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='StrongView', transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='PackSemiInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 384), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
labeled_dataset = dict(
    type=dataset_type,
    metainfo=metainfo,
    reduce_zero_label=True,
    img_suffix='.png',
    seg_map_suffix='.png',
    data_root=data_root,
    data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
    ann_file='splits/labeled_50_seed0.txt',
    pipeline=train_pipeline)
unlabeled_dataset = dict(
    type='UnlabeledImageDataset',
    data_root=data_root,
    data_prefix=dict(img_path='images/train'),
    img_suffix='.png',
    ann_file='splits/unlabeled_50_seed0.txt',
    pipeline=unlabeled_pipeline)
train_dataloader = dict(
    batch_size=labeled_batch + unlabeled_batch,  # supervised: 10 (ReCo)
    dataset=labeled_dataset)
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        metainfo=metainfo,
        reduce_zero_label=True,
        img_suffix='.png',
        seg_map_suffix='.png',
        data_root=data_root,
        data_prefix=dict(img_path='images/test', seg_map_path='labels/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
