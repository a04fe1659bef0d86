# CPU demo: ContrastiveSeg pixel contrast on the demo baseline (DeepLabV3
# ASPPHead on ImageNet MobileNetV2, Colin27 + AAL slices, 16 classes, 160x160
# crops, batch 8, 600 iterations). Identical to
# configs/baseline/deeplabv3_mnv2_aal_cpu.py except the head type and the
# warm-up hook, so the two train at equal iterations with the same seed.
#
# The reference's sampling numbers are per GPU for 2 images of 512x1024 with
# a 64x128 (DeepLab, stride 8) embedding, i.e. 8192 embedding pixels per
# image; here an image has a 20x20 embedding (400 pixels), so max_views is
# scaled from 100 to 10 (a class needs > 10 embedding pixels to give anchors).
# tau / tau_b / weight are the Cityscapes values; the contrast term is off for
# the first 125 iterations (about 1/5 of the schedule; the reference uses
# 5000 of 40000).
_base_ = [
    '../baseline/deeplabv3_mnv2_aal_cpu.py',
    './_base_/contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(_base_._cpu_contrast_head, type='ContrastASPPHead'))
custom_hooks = [dict(type='ContrastWarmupHook', warmup_iters=125)]
