# Supervised + ReCo (ReCo's train_sup.py) on cityscapes_half_reco.py: the
# model and schedule of reco_deeplabv3plus_r101_40k.py with the dataset's
# classes and crop size. A leaf names its labelled split file.
_base_ = ['./reco_deeplabv3plus_r101_40k.py', './cityscapes_half_reco.py']

data_preprocessor = dict(size=_base_.crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=_base_.num_classes))
