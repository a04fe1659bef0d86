# Accuracy suite, DenseCL comparison baseline: the supervised-only arm from a
# randomly initialised backbone (mmseg MobileNetV2's default init), no
# ImageNet weights, fine-tuned on the same 20 labelled canvases.
_base_ = ['./deeplabv3_mnv2_sup-only_20lab-fashion_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(pretrained=None, backbone=dict(init_cfg=None))
