# DenseCL, ResNet-50, COCO train2017 images (~118k), 800 epochs, 8 x 32
# (the paper's COCO setting: SGD lr 0.3, cosine, same model as ImageNet).
# The images are read through an mmseg dataset (COCO-Stuff 164k shares the
# train2017 images; labels unused) with SegImagesDataset:
#   bash tools/dist_train.sh configs/densecl/densecl_resnet50_8xb32-coslr-800e_coco.py 8  # noqa: E501
_base_ = ['./densecl_resnet50_8xb32-coslr-200e_in1k.py']

max_epochs = 800
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='SegImagesDataset',
        seg_dataset=dict(
            type='COCOStuffDataset',
            data_root='data/coco_stuff164k',
            data_prefix=dict(
                img_path='images/train2017',
                seg_map_path='annotations/train2017')),
        pipeline={{_base_.train_pipeline}}))
optim_wrapper = dict(optimizer=dict(lr=0.3))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        by_epoch=True,
        begin=0,
        end=max_epochs)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
