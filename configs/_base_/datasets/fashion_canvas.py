# Fashion-canvas (11 classes: background + 10 Fashion-MNIST classes), 64x64
# grey canvases with 2-4 real product photos each. Prepare with `make data`
# (tools/dataset_converters/fashion_canvas.py documents the recipe).
# Splits: train 2000 | val 300 (choosing settings) | test 500 (held out,
# from Fashion-MNIST's t10k photos: reported, never used to choose settings).
# A horizontal flip preserves every label; no resize (the canvas is the crop).
_base_ = ['./img_ann_dir_cpu.py']
dataset_type = 'FashionCanvasDataset'
data_root = 'data/fashion_canvas'
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, dataset=dict(type=dataset_type, data_root=data_root))
# the held-out test split: as validation, from img_dir/test + ann_dir/test
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        val_dataloader['dataset'],
        data_prefix=dict(img_path='img_dir/test',
                         seg_map_path='ann_dir/test')))
