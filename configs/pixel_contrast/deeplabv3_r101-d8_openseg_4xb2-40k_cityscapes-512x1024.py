# DeepLabV3 on the deep-stem ResNet-101 (dilation 8) rebuilt exactly as
# openseg.pytorch's `DeepLabV3` + `deepbase_resnet101_dilated8`, the CE
# baseline of the ContrastiveSeg release (README: 72.75 mIoU, Cityscapes
# val). The authors' checkpoint converts into this config
# (tools/model_converters/contrastiveseg2mmseg.py, or automatically by
# `tools/test.py THIS_CONFIG <authors' URL>`). Differences from the stock
# mmseg config, all matched to the authors' model code and R_101_D_8.json:
# * backbone: deep stem 3->64->64->128 (stem_channels=128; mmseg V1c:
#   3->32->32->64) and a ceil_mode stem max-pool (ResNetV1cCeilPool);
#   layer3/4 dilation 2/4 with half dilation in each first block
#   (contract_dilation, as their _nostride_dilate with multi_grid [1, 1, 1]);
# * head: ASPP (1x1, d12, d24, d36, image pool; 512 ch) -> conv3x3 + BN + ReLU
#   -> their extra refine conv3x3 + BN (no ReLU) -> 1x1 classifier, no dropout
#   (OpenSegASPPHead); align_corners=True for the final upsampling (their
#   tester);
# * auxiliary (DSN) head on layer3: conv3x3 1024->256 + BN + ReLU -> 1x1
#   classifier, no dropout, weight 0.4;
# * input: BGR images (bgr_to_rgb=False) minus the Caffe BGR mean
#   [102.98, 115.95, 122.77], std 1 (R_101_D_8.json `normalize` block);
# * CE with their Cityscapes class weights (`loss.params.ce_weight`).
# Training from ImageNet needs the deep-stem ResNet-101 ImageNet weights the
# authors used (openseg's `resnet101-imagenet.pth`); mmseg's
# open-mmlab://resnet101_v1c has a 64-channel stem and does not fit, so
# `pretrained` is None here. Training differences kept from mmseg: data
# augmentation, CE on upsampled logits (openseg: labels downsampled to 1/8
# for the CE baseline).
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py',
    './_base_/openseg_cityscapes_ce_weight.py',
]
model = dict(
    pretrained=None,
    data_preprocessor=dict(
        mean=[102.9801, 115.9465, 122.7717],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False),
    backbone=dict(
        type='ResNetV1cCeilPool', stem_channels=128, pool_ceil_mode=True),
    decode_head=dict(
        type='OpenSegASPPHead',
        dropout_ratio=0,
        align_corners=True,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=_base_.openseg_class_weight)),
    auxiliary_head=dict(
        kernel_size=3,
        dropout_ratio=0,
        align_corners=True,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=0.4,
            class_weight=_base_.openseg_class_weight)))
