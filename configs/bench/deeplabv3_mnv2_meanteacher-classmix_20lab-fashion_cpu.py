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
        # ReCo's augmentation of the pseudo-labelled batch (VOC / SUN
        # values): random rescale 0.5-1.5 + crop before mixing, Gaussian blur
        # and flip after it
        unsup_aug=dict(scale=(0.5, 1.5), blur_prob=0.5, flip_prob=0.5),
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

# ReCo's decay min(1 - 1/(t+1), 0.99) with its EMA window capped at 1/10 of
# the schedule (40 iterations of 400: decay 0.975), so the final teacher
# holds ~0 weight on the first half of the run (0.99 would keep 13 %)
custom_hooks = [
    dict(type='MeanTeacherHook', max_decay=0.99, decay_schedule='horizon',
         horizon=0.1)
]
val_cfg = dict(type='TeacherStudentValLoop')
