# ContrastiveSeg on OCRNet-HRNetV2-W48, PASCAL-Context (59 classes), 40k.
# mmseg has no stock OCRNet config for PASCAL-Context, so this composes the
# stock pieces the way mmseg's own HRNet PASCAL-Context configs do: the
# OCRNet model base, the pascal_context_59 dataset, runtime and 40k schedule,
# the HR48 widths of ocrnet_hr48_*_cityscapes
# (_base_/ocrnet_hr48_contrast_40k.py) and the crop / slide test / SGD
# settings of fcn_hr48_4xb4-40k_pascal-context-59-480x480.
_base_ = [
    './_base_/ocrnet_hr48_contrast_40k.py',
    'mmseg::_base_/datasets/pascal_context_59.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

crop_size = (480, 480)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=[
        dict(_base_.model.decode_head[0], num_classes=59),
        dict(_base_.model.decode_head[1], num_classes=59),
    ],
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(320, 320)))
optimizer = dict(type='SGD', lr=0.004, momentum=0.9, weight_decay=0.0001)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
