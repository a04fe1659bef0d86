# ContrastiveSeg memory-bank variant (reference H_48_D_4_MEM.json: tau =
# tau_b = 0.07, max_views 1, loss_weight 1, memory_size 5000,
# pixel_update_freq 10, warm-up 5000) on stock mmseg HRNetV2-W48, Cityscapes.
# The bank (19 x 5000 x 256 x 2 queues, ~194 MB fp32) lives in the head as
# buffers, so checkpoints and --resume keep it; PixelMemoryBankHook enqueues
# the keys after each optimizer step (each rank samples its own images and
# only the written rows are all-gathered, ~0.4 MiB per rank and step; the
# bank is excluded from DDP buffer broadcast). Unlike the reference: class 0
# is enqueued, pixels are pixels of the class, pointers advance by the number
# written. The head and warm-up are those of
# fcn_hr48_contrast_4xb2-40k_cityscapes-512x1024.py.
_base_ = ['./fcn_hr48_contrast_4xb2-40k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(
        contrast_loss=dict(
            temperature=0.07, max_views=1, loss_weight=1.0,
            key_sampling='all'),
        # num_classes, feat_dim and ignore_index come from the head
        memory_bank=dict(
            type='PixelMemoryBank', memory_size=5000, pixel_per_image=10)))
custom_hooks = [
    dict(type='PixelMemoryBankHook'),
    dict(type='ContrastWarmupHook', warmup_iters=5000),
]
