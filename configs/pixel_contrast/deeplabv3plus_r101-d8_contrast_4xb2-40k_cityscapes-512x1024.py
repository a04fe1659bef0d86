# ContrastiveSeg on stock mmseg DeepLabV3+-R101-D8 (not in the paper's
# release; same contrast settings as the DeepLabV3 recipe), Cityscapes.
_base_ = [
    'mmseg::deeplabv3plus/'
    'deeplabv3plus_r101-d8_4xb2-40k_cityscapes-512x1024.py',
    './_base_/contrast_warmup_5k.py',
    './_base_/contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(
        _base_._contrast_head, type='ContrastDepthwiseSeparableASPPHead'))
