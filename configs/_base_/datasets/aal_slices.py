# Colin27 T1 + AAL atlas, axial slices, 16 classes (lobe x hemisphere +
# vermis + background). Prepare with
#   python tools/dataset_converters/prepare_offline_data.py --aal
# Slices are 217 x 181 (H x W). Left and right hemispheres are different
# classes, so NO RandomFlip: a horizontal flip would swap _L and _R labels.
# Augmentation: random rescale + crop, photometric jitter (brightness /
# contrast act on the grey T1; hue / saturation leave a grey image unchanged).
_base_ = ['./img_ann_dir_cpu.py']
dataset_type = 'AALSliceDataset'
data_root = 'data/aal_slices'
crop_size = (160, 160)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(217, 181),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
