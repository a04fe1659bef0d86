# The CPU demos' segmentor: stock mmseg DeepLabV3 (ASPPHead + FCN auxiliary
# head) on the ImageNet MobileNetV2 backbone with mmseg's mobilenet-v2-d8
# wiring (output stride 8), BN (single process: no SyncBN). Configs add the
# number of classes, the crop size and, where the feature map is smaller,
# their own strides / ASPP dilations.
_base_ = ['mmseg::_base_/models/deeplabv3_r50-d8.py']

norm_cfg = dict(type='BN', requires_grad=True)  # single process: no SyncBN
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.,
        strides=(1, 2, 2, 1, 1, 1, 1),
        dilations=(1, 1, 1, 2, 2, 4, 4),
        out_indices=(1, 2, 4, 6),
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrain/mobilenet_v2_imagenet_mmseg.pth')),
    decode_head=dict(in_channels=320, channels=128, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=96, channels=64, norm_cfg=norm_cfg))
