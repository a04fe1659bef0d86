# HRNetV2-W48 + FCN head rebuilt exactly as openseg.pytorch's `HRNet_W48`,
# the CE baseline of the ContrastiveSeg release (README: 79.27 mIoU,
# Cityscapes val). The authors' checkpoint converts into this config
# (tools/model_converters/contrastiveseg2mmseg.py, or automatically by
# `tools/test.py THIS_CONFIG <authors' URL>`). Differences from the stock
# mmseg config, all matched to the authors' model code and H_48_D_4.json:
# * backbone: fuse-layer upsampling with align_corners=True (AlignedHRNet);
# * head: conv3x3 720->720 + BN + ReLU (mmseg: conv1x1), Dropout2d(0.1),
#   1x1 classifier; resize_concat and the final upsampling with
#   align_corners=True (as their model and tester);
# * input: BGR images (bgr_to_rgb=False) minus the ImageNet mean / std taken
#   in B, G, R order, as their data pipeline (cv2 BGR, `normalize` block);
# * CE with their Cityscapes class weights (`loss.params.ce_weight`).
# Training differences kept from mmseg: data augmentation (no random
# brightness / aspect jitter), SyncBN statistics, the classifier's bias (a
# zero bias is added on conversion).
_base_ = [
    'mmseg::hrnet/fcn_hr48_4xb2-40k_cityscapes-512x1024.py',
    './_base_/openseg_cityscapes_ce_weight.py',
]
model = dict(
    data_preprocessor=dict(bgr_to_rgb=False),
    backbone=dict(type='AlignedHRNet', fuse_align_corners=True),
    decode_head=dict(
        kernel_size=3,
        dropout_ratio=0.1,
        align_corners=True,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=_base_.openseg_class_weight)))
