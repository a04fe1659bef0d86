# ReCo + ClassMix (ReCo's train_semisup.py) on voc12aug_reco.py: the
# SemiSegmentor of reco-classmix_deeplabv3plus_r101_40k.py with the dataset's
# classes, crop size and batch augmentation (reco_unsup_aug); every batch
# holds labeled_batch images of labeled_dataset + unlabeled_batch images of
# unlabeled_dataset. A leaf names its labelled / unlabelled split files.
_base_ = [
    './reco-classmix_deeplabv3plus_r101_40k.py',
    './voc12aug_reco.py',
]

data_preprocessor = dict(size=_base_.crop_size)
model = dict(
    segmentor=dict(
        data_preprocessor=data_preprocessor,
        decode_head=dict(num_classes=_base_.num_classes)),
    semi_train_cfg=dict(unsup_aug=_base_.reco_unsup_aug))
train_dataloader = dict(
    sampler=dict(
        _delete_=True,
        type='MultiSourceSampler',
        batch_size=_base_.labeled_batch + _base_.unlabeled_batch,
        source_ratio=[_base_.labeled_batch, _base_.unlabeled_batch]),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['classes', 'palette'],
        datasets=[_base_.labeled_dataset, _base_.unlabeled_dataset]))
