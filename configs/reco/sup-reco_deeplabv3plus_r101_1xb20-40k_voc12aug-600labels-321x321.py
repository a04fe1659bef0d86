# ReCo + supervised (ReCo's train_sup.py): CE + ReCo loss on the 600 labelled
# images of Pascal VOC 2012 + SBD aug (10,582 images), batch 20, 40k
# iterations. Split file: splits/labeled_600_seed0.txt under the data root.
_base_ = ['./_base_/sup-reco_voc12aug.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(ann_file='splits/labeled_600_seed0.txt'))
