# DenseCL, ResNet-50, ImageNet-1k, 200 epochs, 8 GPUs x 32 (the paper's
# setting; mmpretrain 1.2.0's config with the up-front checks added):
#   bash tools/dist_train.sh configs/densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py 8  # noqa: E501
# Then convert for mmseg (ResNet V1b, 7x7 stem):
#   python tools/model_converters/densecl2mmseg.py \
#       work_dirs/densecl_resnet50_8xb32-coslr-200e_in1k/epoch_200.pth \
#       checkpoints/densecl_r50_in1k_mmseg.pth \
#       --backbone-type ResNet --depth 50
_base_ = ['mmpretrain::densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

# same model; queue/batch, dense-grid and momentum checked before training
model = dict(type='CheckedDenseCL')
custom_hooks = [dict(type='DenseCLCheckHook')]
