# ReCo + ClassMix (ReCo's train_semisup.py): mean teacher, ClassMix on the
# unlabelled batch, unsupervised CE weighted by the per-image share of
# confident pseudo-labels, ReCo on labelled + unlabelled pixels. Cityscapes at
# half resolution (2,975 images): 150 labelled images, the rest unlabelled;
# batch 2 labelled + 2 unlabelled, 40k iterations. Split files:
# splits/{labeled,unlabeled}_150_seed0.txt under the data root.
_base_ = ['./_base_/reco-classmix_cityscapes-half.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(datasets=[
    dict(_base_.labeled_dataset, ann_file='splits/labeled_150_seed0.txt'),
    dict(_base_.unlabeled_dataset, ann_file='splits/unlabeled_150_seed0.txt'),
]))
