# ContrastiveSeg on OCRNet-HRNetV2-W48, COCO-Stuff-10k (171 classes), 40k.
# No stock mmseg OCRNet COCO-Stuff config: composed from the stock OCRNet
# model base, coco-stuff10k dataset, runtime and 40k schedule, with the HR48
# widths of ocrnet_hr48_* (_base_/ocrnet_hr48_contrast_40k.py). Reference
# COCO-Stuff contrast block.
_base_ = [
    './_base_/ocrnet_hr48_contrast_40k.py',
    'mmseg::_base_/datasets/coco-stuff10k.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=[
        dict(_base_.model.decode_head[0], num_classes=171),
        dict(_base_.model.decode_head[1], num_classes=171),
    ])
