# CPU demo: mean teacher + ClassMix (ReCo's semi-supervised recipe without
# the ReCo loss) on the 5 % labelled split of the AAL slices, any stock
# segmentor wrapped by SemiSegmentor. Each batch = 4 labelled + 4 unlabelled
# crops (ReCo: 10 + 10); same labelled batch, schedule and iterations as
# deeplabv3_mnv2_sup-only_5pct-aal_cpu.py.
#
# Unlabelled pipeline: the weak view (resize + crop, as ReCo's unlabelled
# loader) is what the EMA teacher pseudo-labels; StrongView adds the same
# crop through PhotoMetricDistortion for the student; ClassMix is applied on
# the batch inside SemiSegmentor.loss().
_base_ = ['./deeplabv3_mnv2_sup-only_5pct-aal_cpu.py']
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
        reco=True),
    semi_test_cfg=dict(predict_on='teacher'))

unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=(217, 181), ratio_range=(0.75, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=_base_.crop_size),
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

# Teacher EMA whose window fits the 200-iteration schedule: ReCo's
# min(1 - 1/(t+1), 0.99) would still weigh the first 100 iterations by
# 0.99^100 = 0.37 at iteration 200; the horizon schedule caps the decay at
# 1 - 1/(0.1 * max_iters) = 0.95 (weight 0.95^100 = 0.006). See
# configs/reco/README.md, "Fixes for short schedules".
custom_hooks = [
    dict(type='MeanTeacherHook', decay_schedule='horizon', horizon=0.1)
]
val_cfg = dict(type='TeacherStudentValLoop')
