# Fine-tune the CPU demo (DeepLabV3 on MobileNetV2, AAL slices) from the
# DenseCL pre-trained backbone of
# configs/densecl/densecl_mnv2_1xb16-coslr-1k_aal-128x128.py, converted with
#   python tools/model_converters/densecl2mmseg.py \
#       work_dirs/densecl_mnv2_1xb16-coslr-1k_aal-128x128/iter_1000.pth \
#       work_dirs/densecl_demo/densecl_mnv2_aal_mmseg.pth \
#       --config configs/densecl/deeplabv3_mnv2_densecl-aal-pre_aal_cpu.py \
#       --ignore-unexpected 'conv2.*'
# (tools/run_densecl_demo.py does all of it). The converted checkpoint has
# mmseg MobileNetV2 keys without prefix: no `prefix` in init_cfg, and
# `model.pretrained=None` (already None in the baseline).
_base_ = ['../baseline/deeplabv3_mnv2_aal_cpu.py']

densecl_checkpoint = 'work_dirs/densecl_demo/densecl_mnv2_aal_mmseg.pth'
model = dict(
    pretrained=None,
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=densecl_checkpoint)))
