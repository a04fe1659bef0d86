# ContrastiveSeg on stock mmseg DeepLabV3-R101-D8, COCO-Stuff-10k (171
# classes), 40k iters. Reference COCO-Stuff contrast block: tau = tau_b =
# 0.07, max_samples 1024, max_views 100, warm-up 5000, weight 0.1.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-40k_coco-stuff10k-512x512.py',
    './_base_/contrast_warmup_5k.py',
    './_base_/contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(_base_._contrast_head_tau007, type='ContrastASPPHead'))
