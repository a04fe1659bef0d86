# ReCo + supervised (ReCo's train_sup.py): CE + ReCo loss on the 50 labelled
# images of SUN RGB-D (5,285 images; provide the data, see
# _base_/sunrgbd_reco.py), batch 10, 40k iterations. Split file:
# splits/labeled_50_seed0.txt under the data root.
_base_ = ['./_base_/sup-reco_sunrgbd.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(ann_file='splits/labeled_50_seed0.txt'))
