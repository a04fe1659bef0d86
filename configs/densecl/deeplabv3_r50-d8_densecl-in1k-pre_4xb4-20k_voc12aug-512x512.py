# DeepLabV3 R50-D8 on VOC12aug fine-tuned from DenseCL ImageNet weights (the paper's
# segmentation transfer: mmseg's DeepLabV3 R50-D8 recipe with the backbone swapped).
# Pitfalls handled here (see the DenseCL reference note, section 3.2):
# * backbone type='ResNet' (V1b, 7x7 stem, what DenseCL trains), NOT mmseg's
#   default ResNetV1c, whose deep stem (stem.*) would silently stay random;
# * model.pretrained=None, otherwise the base's 'open-mmlab://resnet50_v1c'
#   conflicts with init_cfg;
# * the checkpoint is the converter's output (keys without prefix), so no
#   'prefix'. Convert any DenseCL checkpoint first (official release,
#   mmselfsup 0.x or mmpretrain 1.x), e.g.
#     python tools/model_converters/densecl2mmseg.py \
#         densecl_r50_imagenet_200ep.pth checkpoints/densecl_r50_in1k_mmseg.pth \
#         --config configs/densecl/deeplabv3_r50-d8_densecl-in1k-pre_4xb4-20k_voc12aug-512x512.py
#   (COCO-pre-trained weights: override with --cfg-options
#   model.backbone.init_cfg.checkpoint=checkpoints/densecl_r50_coco_mmseg.pth)
# Paper setting: SyncBN, 4 GPUs (mmengine falls back to BN on 1 process).
#   bash tools/dist_train.sh configs/densecl/deeplabv3_r50-d8_densecl-in1k-pre_4xb4-20k_voc12aug-512x512.py 4
_base_ = ['mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

densecl_checkpoint = 'checkpoints/densecl_r50_in1k_mmseg.pth'
model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint=densecl_checkpoint)))
