# Accuracy suite, pixel-contrast arm: identical to the supervised-only arm
# (deeplabv3_mnv2_sup-only_20lab-fashion_cpu.py) except the head type
# (ContrastASPPHead: + ContrastiveSeg projection head and pixel contrast loss
# on the ASPP bottleneck feature) and the warm-up hook.
# Sampling: an image has a 16x16 embedding (256 pixels); max_views 10 keeps
# the reference's anchors-per-class scale (a class needs > 10 pixels), and
# tau / tau_b / weight are the reference's Cityscapes values. The contrast
# term is off for the first 1/5 of the schedule (reference: 5000 of 40000
# iterations, i.e. 1/8; our schedule is shorter, so a little longer).
_base_ = [
    './deeplabv3_mnv2_sup-only_20lab-fashion_cpu.py',
    '../pixel_contrast/_base_/contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(_base_._cpu_contrast_head, type='ContrastASPPHead'))
custom_hooks = [dict(type='ContrastWarmupHook', warmup_iters=80)]
