# ContrastiveSeg on stock mmseg HRNetV2-W48 (FCNHead on the resize_concat of
# the four branches; the projection head embeds that 720-ch concat, the
# reference's projection input, proj_in='backbone'), Cityscapes 512x1024, 40k
# iters, 4 GPUs x 2 images. For the authors' exact architecture (and their
# released checkpoint) see
# fcn_hr48_openseg-contrast_4xb2-40k_cityscapes-512x1024.py.
_base_ = [
    'mmseg::hrnet/fcn_hr48_4xb2-40k_cityscapes-512x1024.py',
    './_base_/contrast_warmup_5k.py',
    './_base_/contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(_base_._contrast_head, type='ContrastFCNHead'))
