# Accuracy suite, semi-supervised arm: the supervised-only arm's segmentor
# wrapped by SemiSegmentor (ReCo's recipe without the ReCo loss): EMA mean
# teacher, confidence-weighted pseudo-labels, ClassMix. Each iteration =
# the same 8 labelled canvases as the supervised-only arm + 8 of the 1980
# unlabelled training canvases; equal iterations.
_base_ = ['./deeplabv3_mnv2_sup-only_20lab-fashion_cpu.py']
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
        unsup_weighting='ratio',  # ReCo: per-image share of conf >= 0.97
        mix_mode='classmix',
        reco=False),
    semi_test_cfg=dict(predict_on='teacher'))

# weak view (flip) for the teacher; the student's strong view adds
# photometric jitter (brightness / contrast act on the grey canvases)
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='StrongView', transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='PackSemiInputs'),
]
labeled_dataset = _base_.train_dataloader.dataset
unlabeled_dataset = dict(
    type='UnlabeledImageDataset',
    data_root=_base_.data_root,
    data_prefix=dict(img_path='img_dir/train'),
    img_suffix='.png',
    ann_file=_base_.unlabeled_split,
    pipeline=unlabeled_pipeline)
train_dataloader = dict(
    _delete_=True,
    batch_size=2 * _base_.labeled_batch,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(
        type='MultiSourceSampler',
        batch_size=2 * _base_.labeled_batch,
        source_ratio=[1, 1]),
    dataset=dict(
        type='ConcatDataset',
        datasets=[labeled_dataset, unlabeled_dataset],
        ignore_keys=['classes', 'palette']))

custom_hooks = [dict(type='MeanTeacherHook', max_decay=0.99)]
val_cfg = dict(type='TeacherStudentValLoop')
