# Accuracy suite, DenseCL arm: the random-init arm
# (deeplabv3_mnv2_random-init_20lab-fashion_cpu.py) with the backbone
# initialised from DenseCL pre-training on the unlabelled canvases
# (densecl_mnv2_1xb32-coslr-1200it_fashion-64x64.py), converted with
# tools/model_converters/densecl2mmseg.py. The suite passes each seed's own
# pre-trained file through `--cfg-options
# model.backbone.init_cfg.checkpoint=...`.
_base_ = ['./deeplabv3_mnv2_sup-only_20lab-fashion_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

densecl_checkpoint = ('work_dirs/bench_accuracy/densecl_pretrain_1200it/'
                      'seed_0/densecl_mnv2_mmseg.pth')
model = dict(
    pretrained=None,
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=densecl_checkpoint)))
