# CPU demo, memory-bank variant: deeplabv3_mnv2_contrast_aal_cpu.py with a
# per-class pixel + segment memory bank (ContrastiveSeg's memory mode): the
# anchors of each batch are contrasted against the bank instead of the batch.
# 16 classes x 1000 slots x 256 x 2 queues (~33 MB fp32; the reference's 5000
# slots are for 19 Cityscapes classes on 4 GPUs); 10 pixels and one segment
# mean per (image, class) are enqueued after every optimizer step by
# PixelMemoryBankHook (all ranks hold the same bank). The loss settings are
# those of the in-batch demo.
_base_ = ['./deeplabv3_mnv2_contrast_aal_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(
        memory_bank=dict(
            type='PixelMemoryBank', memory_size=1000, pixel_per_image=10)))
custom_hooks = [
    dict(type='PixelMemoryBankHook'),
    dict(type='ContrastWarmupHook', warmup_iters=125),
]
