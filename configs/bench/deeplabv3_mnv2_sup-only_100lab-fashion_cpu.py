# Accuracy suite, 100-label protocol:
# deeplabv3_mnv2_sup-only_20lab-fashion_cpu.py
# trained on the 100 labelled canvases (ReCo's class-balanced selector,
# >= 3 classes each, split seed 0) instead of 20; everything else identical.
_base_ = ['./deeplabv3_mnv2_sup-only_20lab-fashion_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

labeled_split = 'splits/train_labeled_100_seed0.txt'
unlabeled_split = 'splits/train_unlabeled_100_seed0.txt'
train_dataloader = dict(dataset=dict(ann_file=labeled_split))
