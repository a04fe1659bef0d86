# ReCo + supervised (ReCo's train_sup.py): CE + ReCo loss on the 20 labelled
# images of Cityscapes at half resolution (2,975 images), batch 4, 40k
# iterations. Split file: splits/labeled_20_seed0.txt under the data root.
_base_ = [
    './_base_/reco_deeplabv3plus_r101_40k.py',
    './_base_/cityscapes_half_reco.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

data_preprocessor = dict(size=_base_.crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=_base_.num_classes))
train_dataloader = dict(dataset=dict(ann_file='splits/labeled_20_seed0.txt'))
