# ContrastiveSeg (Wang et al., ICCV'21) on stock mmseg DeepLabV3-R101-D8,
# Cityscapes 512x1024, 40k iters, 4 GPUs x 2 images (the reference recipe:
# max_samples / max_views are per-GPU quantities for 2 images per GPU).
# Only the decode head type changes, plus the warm-up hook.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py',
    './_base_/contrast_warmup_5k.py',
    './_base_/contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(_base_._contrast_head, type='ContrastASPPHead'))
