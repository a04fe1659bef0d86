# DenseCL ImageNet weights for the paper's segmentation transfer (mmseg's
# R50-D8 recipes with the backbone swapped; every *_densecl-in1k-pre_* config
# of this folder). Each fine-tune config sets, on its stock mmseg config:
#   model = dict(pretrained=None, backbone=_base_._densecl_r50_backbone)
# (`_densecl_r50_backbone`, below, is a config-time helper variable: its `_`
# keeps it out of the resolved config). Pitfalls handled that way (see the
# DenseCL reference note, section 3.2):
# * backbone type='ResNet' (V1b, 7x7 stem, what DenseCL trains), NOT mmseg's
#   default ResNetV1c, whose deep stem (stem.*) would silently stay random;
# * model.pretrained=None, otherwise the base's 'open-mmlab://resnet50_v1c'
#   conflicts with init_cfg;
# * the checkpoint is the converter's output (keys without prefix), so no
#   'prefix'. Convert any DenseCL checkpoint first (official release,
#   mmselfsup 0.x or mmpretrain 1.x), e.g.
#     python tools/model_converters/densecl2mmseg.py \
#         densecl_r50_imagenet_200ep.pth \
#         checkpoints/densecl_r50_in1k_mmseg.pth \
#         --config <the fine-tune config>
#   (COCO-pre-trained weights: override with --cfg-options
#   model.backbone.init_cfg.checkpoint=checkpoints/densecl_r50_coco_mmseg.pth)
# Paper setting: SyncBN, 4 GPUs (mmengine falls back to BN on 1 process).
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

densecl_checkpoint = 'checkpoints/densecl_r50_in1k_mmseg.pth'
_densecl_r50_backbone = dict(
    type='ResNet',
    depth=50,
    init_cfg=dict(type='Pretrained', checkpoint=densecl_checkpoint))
