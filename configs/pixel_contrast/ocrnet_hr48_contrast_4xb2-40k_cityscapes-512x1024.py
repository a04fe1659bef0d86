# ContrastiveSeg on stock mmseg OCRNet-HRNetV2-W48, Cityscapes 512x1024,
# 40k iters, 4 GPUs x 2 images. The contrast branch sits on the OCR stage
# (decode_head[1]); stage 0 (the soft-region FCN head) is unchanged.
# mmengine replaces lists wholesale, so both stages are restated from the
# stock config via `_base_` references.
_base_ = [
    'mmseg::ocrnet/ocrnet_hr48_4xb2-40k_cityscapes-512x1024.py',
    './_base_/contrast_warmup_5k.py',
    './_base_/contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(decode_head=[
    _base_.model.decode_head[0],
    dict(
        _base_.model.decode_head[1],
        **_base_._contrast_head,
        type='ContrastOCRHead'),
])
