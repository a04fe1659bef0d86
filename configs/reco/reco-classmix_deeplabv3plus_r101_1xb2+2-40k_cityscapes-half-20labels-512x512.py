# ReCo + ClassMix (ReCo's train_semisup.py): mean teacher, ClassMix on the
# unlabelled batch, unsupervised CE weighted by the per-image share of
# confident pseudo-labels, ReCo on labelled + unlabelled pixels. Cityscapes at
# half resolution (2,975 images): 20 labelled images, the rest unlabelled;
# batch 2 labelled + 2 unlabelled, 40k iterations. Split files:
# splits/{labeled,unlabeled}_20_seed0.txt under the data root.
_base_ = [
    './sup-reco_deeplabv3plus_r101_1xb4-40k_cityscapes-half-20labels-512x512.py'  # noqa: E501
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='SemiSegmentor',
    segmentor=_base_.model,
    semi_train_cfg=dict(
        sup_weight=1.0,
        unsup_weight=1.0,
        weak_threshold=0.7,
        strong_threshold=0.97,
        unsup_weighting='ratio',
        mix_mode='classmix',
        reco=True,
        unsup_aug=_base_.reco_unsup_aug),
    semi_test_cfg=dict(predict_on='teacher'))
train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(
        type='MultiSourceSampler',
        batch_size=4,
        source_ratio=[2, 2]),
    dataset=dict(
        type='ConcatDataset',
        ignore_keys=['classes', 'palette'],
        datasets=[
            _base_.train_dataloader.dataset,
            dict(
                type='UnlabeledImageDataset',
                data_root=_base_.data_root,
                data_prefix=dict(img_path='leftImg8bit/train'),
                img_suffix='_leftImg8bit.png',
                ann_file='splits/unlabeled_20_seed0.txt',
                pipeline=_base_.unlabeled_pipeline)
        ]))
custom_hooks = [dict(type='MeanTeacherHook', max_decay=0.99)]
val_cfg = dict(type='TeacherStudentValLoop')
default_hooks = dict(checkpoint=dict(save_best='teacher/mIoU'))
