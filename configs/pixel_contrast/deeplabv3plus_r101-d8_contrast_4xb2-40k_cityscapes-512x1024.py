# ContrastiveSeg on stock mmseg DeepLabV3+-R101-D8 (not in the paper's
# release; same contrast settings as the DeepLabV3 recipe), Cityscapes.
_base_ = [
    'mmseg::deeplabv3plus/'
    'deeplabv3plus_r101-d8_4xb2-40k_cityscapes-512x1024.py',
    './_base_/contrast_warmup_5k.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(
        type='ContrastDepthwiseSeparableASPPHead',
        proj_in='backbone',
        proj_channels=256,
        contrast_loss=dict(
            type='PixelContrastLoss',
            temperature=0.1,
            base_temperature=0.07,
            max_samples=1024,
            max_views=100,
            ignore_index=255,
            loss_weight=0.1)))
