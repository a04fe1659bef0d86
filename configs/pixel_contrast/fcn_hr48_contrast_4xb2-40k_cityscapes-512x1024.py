# ContrastiveSeg on stock mmseg HRNetV2-W48 (FCNHead on the 720-ch
# resize_concat of the four branches, exactly the reference's projection
# input), Cityscapes 512x1024, 40k iters, 4 GPUs x 2 images.
_base_ = ['mmseg::hrnet/fcn_hr48_4xb2-40k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(
        type='ContrastFCNHead',
        proj_channels=256,
        contrast_loss=dict(
            type='PixelContrastLoss',
            temperature=0.1,
            base_temperature=0.07,
            max_samples=1024,
            max_views=100,
            ignore_index=255,
            loss_weight=0.1)))
custom_hooks = [dict(type='ContrastWarmupHook', warmup_iters=5000)]
