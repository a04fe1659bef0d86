# The CPU demo (DeepLabV3 on MobileNetV2, AAL slices) from a randomly
# initialised backbone (mmseg MobileNetV2's default Kaiming/constant init):
# the reference DenseCL pre-training is compared with, at equal iterations.
_base_ = ['../baseline/deeplabv3_mnv2_aal_cpu.py']

model = dict(pretrained=None, backbone=dict(init_cfg=None))
