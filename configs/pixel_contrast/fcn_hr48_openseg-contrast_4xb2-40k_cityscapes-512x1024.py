# ContrastiveSeg's `HRNet_W48_CONTRAST` exactly (README: 80.18 mIoU,
# Cityscapes val, `hrnet_w48_contrast_lr1x_hrnet_contrast_t0.1`): the
# architecture of fcn_hr48_openseg_4xb2-40k_cityscapes-512x1024.py plus the
# projection head on the 720-ch concat of the four branches
# (proj_in='backbone', what their checkpoint holds, so training can continue
# from it), and their contrast settings (H_48_D_4.json `contrast` block).
_base_ = [
    './fcn_hr48_openseg_4xb2-40k_cityscapes-512x1024.py',
    './_base_/contrast_warmup_5k.py',
    './_base_/contrast_head.py',
]

model = dict(
    decode_head=dict(
        _base_._contrast_head,
        type='ContrastFCNHead',
        contrast_loss=_base_._openseg_contrast_loss))
