# ContrastiveSeg on stock mmseg HRNetV2-W48, PASCAL-Context (59 classes),
# 40k iters; reference PASCAL-Context contrast block (tau = tau_b = 0.07).
_base_ = [
    'mmseg::hrnet/fcn_hr48_4xb4-40k_pascal-context-59-480x480.py',
    './_base_/contrast_warmup_5k.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(
        type='ContrastFCNHead',
        proj_in='backbone',
        proj_channels=256,
        contrast_loss=dict(
            type='PixelContrastLoss',
            temperature=0.07,
            base_temperature=0.07,
            max_samples=1024,
            max_views=100,
            ignore_index=255,
            loss_weight=0.1)))
