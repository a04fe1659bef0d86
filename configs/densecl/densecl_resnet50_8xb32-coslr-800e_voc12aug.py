# DenseCL pre-training on the images of an mmseg dataset: PASCAL VOC 2012
# train + SBD aug (10582 images, labels unused), ResNet-50, 8 x 32, COCO-style
# schedule (800 epochs ~ 33k iterations). Any mmseg dataset config works in
# `seg_dataset` (a list concatenates image lists, duplicates dropped).
#   bash tools/dist_train.sh configs/densecl/densecl_resnet50_8xb32-coslr-800e_voc12aug.py 8  # noqa: E501
_base_ = ['./densecl_resnet50_8xb32-coslr-800e_coco.py']

voc_root = 'data/VOCdevkit/VOC2012'
train_dataloader = dict(
    dataset=dict(seg_dataset=[
        dict(
            type='PascalVOCDataset',
            data_root=voc_root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file='ImageSets/Segmentation/train.txt'),
        dict(
            type='PascalVOCDataset',
            data_root=voc_root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
            ann_file='ImageSets/Segmentation/aug.txt'),
    ]))
optim_wrapper = dict(optimizer=dict(lr=0.03))
