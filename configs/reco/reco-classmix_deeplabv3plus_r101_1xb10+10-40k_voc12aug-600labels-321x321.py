# ReCo + ClassMix (ReCo's train_semisup.py): mean teacher, ClassMix on the
# unlabelled batch, unsupervised CE weighted by the per-image share of
# confident pseudo-labels, ReCo on labelled + unlabelled pixels. Pascal VOC
# 2012 + SBD aug (10,582 images): 600 labelled images, the rest unlabelled;
# batch 10 labelled + 10 unlabelled, 40k iterations. Split files:
# splits/{labeled,unlabeled}_600_seed0.txt under the data root.
_base_ = ['./_base_/reco-classmix_voc12aug.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(datasets=[
    dict(_base_.labeled_dataset, ann_file='splits/labeled_600_seed0.txt'),
    dict(_base_.unlabeled_dataset, ann_file='splits/unlabeled_600_seed0.txt'),
]))
