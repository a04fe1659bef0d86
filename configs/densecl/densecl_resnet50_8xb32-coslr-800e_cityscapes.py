# DenseCL pre-training on the images of an mmseg dataset: Cityscapes
# leftImg8bit/train (2975 images, labels unused), ResNet-50, 8 x 32,
# 800 epochs (~9.3k iterations).
#   bash tools/dist_train.sh configs/densecl/densecl_resnet50_8xb32-coslr-800e_cityscapes.py 8  # noqa: E501
_base_ = ['./densecl_resnet50_8xb32-coslr-800e_coco.py']

train_dataloader = dict(
    dataset=dict(
        seg_dataset=dict(
            _delete_=True,
            type='CityscapesDataset',
            data_root='data/cityscapes',
            data_prefix=dict(
                img_path='leftImg8bit/train', seg_map_path='gtFine/train'))))
optim_wrapper = dict(optimizer=dict(lr=0.03))
