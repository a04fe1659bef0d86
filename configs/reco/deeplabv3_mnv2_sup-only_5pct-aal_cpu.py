# CPU demo, supervised-only lower bound of the semi-supervised comparison:
# the demo baseline (DeepLabV3 ASPPHead on ImageNet MobileNetV2, Colin27 +
# AAL slices, 16 classes) trained on the 5 % labelled split only (4 of the
# 82 training slices, ReCo's greedy class-covering selection, seed 0), with
# the same labelled batch (4) and the same number of iterations as the
# mean-teacher configs of this folder.
#
# CPU budget (one shared core, <= ~10 min per run for the slowest, ReCo):
# 128x128 crops instead of the baseline's 160x160 and 200 iterations; a
# mean-teacher iteration costs ~3 student/teacher passes.
#
# Split files (one slice id per line) under data/aal_slices/splits/, written
# by the partial-dataset tool:
#   python tools/dataset_converters/reco_partial_dataset.py \
#       configs/baseline/deeplabv3_mnv2_aal_cpu.py --fraction 0.05 \
#       --min-classes 1 --seed 0 \
#       --labeled-file data/aal_slices/splits/train_labeled_5pct_seed0.txt \
#       --unlabeled-file data/aal_slices/splits/train_unlabeled_5pct_seed0.txt
# (labelled: z015, z059, z091, z123; every class in at least one of them)
_base_ = ['../baseline/deeplabv3_mnv2_aal_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

labeled_split = 'splits/train_labeled_5pct_seed0.txt'
unlabeled_split = 'splits/train_unlabeled_5pct_seed0.txt'
labeled_batch = 4
crop_size = (128, 128)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(217, 181), ratio_range=(0.75, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]

# equal-iteration schedule shared by the three demo configs
max_iters = 200
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))

train_dataloader = dict(
    batch_size=labeled_batch,
    dataset=dict(ann_file=labeled_split, pipeline=train_pipeline))
