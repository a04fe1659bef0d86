# ContrastiveSeg on stock mmseg OCRNet-HRNetV2-W48, Cityscapes 512x1024,
# 40k iters, 4 GPUs x 2 images. The contrast branch sits on the OCR stage
# (decode_head[1]); stage 0 (the soft-region FCN head) is unchanged.
# mmengine replaces lists wholesale, so both stages are restated from the
# stock config via `_base_` references.
_base_ = [
    'mmseg::ocrnet/ocrnet_hr48_4xb2-40k_cityscapes-512x1024.py',
    './_base_/contrast_warmup_5k.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(decode_head=[
    _base_.model.decode_head[0],
    dict(
        _base_.model.decode_head[1],
        type='ContrastOCRHead',
        proj_in='backbone',
        proj_channels=256,
        contrast_loss=dict(
            type='PixelContrastLoss',
            temperature=0.1,
            base_temperature=0.07,
            max_samples=1024,
            max_views=100,
            ignore_index=255,
            loss_weight=0.1)),
])
