# ReCo + supervised (ReCo's train_sup.py): CE + ReCo loss on the 50 labelled
# images of Cityscapes at half resolution (2,975 images), batch 4, 40k
# iterations. Split file: splits/labeled_50_seed0.txt under the data root.
_base_ = ['./_base_/sup-reco_cityscapes-half.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(ann_file='splits/labeled_50_seed0.txt'))
