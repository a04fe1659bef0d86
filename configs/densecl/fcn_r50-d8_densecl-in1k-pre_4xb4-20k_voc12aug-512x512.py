# FCN R50-D8 on VOC12aug fine-tuned from DenseCL ImageNet weights (the
# paper's segmentation transfer: mmseg's FCN R50-D8 recipe with the
# backbone swapped). Backbone, pre-trained weights and conversion:
# _base_/densecl-in1k-pre_r50.py.
#   bash tools/dist_train.sh configs/densecl/fcn_r50-d8_densecl-in1k-pre_4xb4-20k_voc12aug-512x512.py 4  # noqa: E501
_base_ = [
    'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py',
    './_base_/densecl-in1k-pre_r50.py',
]

model = dict(pretrained=None, backbone=_base_._densecl_r50_backbone)
