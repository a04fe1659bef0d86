# ContrastiveSeg's `DeepLabV3Contrast` exactly (README: 77.67 mIoU,
# Cityscapes val, `deeplab_v3_contrast_deepbase_resnet101_dilated8`): the
# architecture of deeplabv3_r101-d8_openseg_4xb2-40k_cityscapes-512x1024.py
# plus the projection head on layer4 (2048 ch, proj_in='backbone', what their
# checkpoint holds, so training can continue from it), and their contrast
# settings (R_101_D_8.json `contrast` block).
_base_ = [
    './deeplabv3_r101-d8_openseg_4xb2-40k_cityscapes-512x1024.py',
    './_base_/contrast_warmup_5k.py',
    './_base_/contrast_head.py',
]

model = dict(
    decode_head=dict(
        _base_._contrast_head,
        type='ContrastOpenSegASPPHead',
        contrast_loss=_base_._openseg_contrast_loss))
