# CPU demo baseline: stock mmseg DeepLabV3 (ASPPHead) on the ImageNet
# MobileNetV2 backbone (mmseg's mobilenet-v2-d8 wiring: output stride 8),
# trained on Colin27 + AAL axial slices (16 classes) on a 2-core CPU.
# Prepare data + weights first: `make data`. Run: `python tools/run_demo.py`.
# Contrastive variants inherit this file and replace `decode_head`.
# Short CPU schedule (poly LR, SGD as in mmseg, 600 iterations):
# _base_/cpu_runtime.py.
_base_ = [
    '../_base_/models/deeplabv3_mnv2-d8.py',
    '../_base_/datasets/aal_slices.py',
    '../_base_/cpu_runtime.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

num_classes = 16
crop_size = (160, 160)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        # mmseg's (1, 12, 24, 36) is for 64x64 feature maps (512 crops);
        # scaled to the 20x20 maps of 160x160 crops.
        dilations=(1, 4, 8, 12),
        num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))
