# Loader settings shared by the ReCo dataset bases (voc12aug_reco.py,
# cityscapes_half_reco.py, sunrgbd_reco.py): 4 workers, infinite shuffled
# training sampler, batch-1 validation / test on the whole image, mIoU; and
# ReCo's augmentation of the pseudo-labelled batch (build_data.py
# batch_transform, scale_size (0.5, 1.5) for Pascal / SUN): rescale + pad +
# crop before mixing, blur (p 0.5, sigma 0.15-1.15) and flip (p 0.5) after
# (SemiSegmentor's semi_train_cfg.unsup_aug). Each dataset base adds its
# datasets and the training batch size.
reco_unsup_aug = dict(
    scale=(0.5, 1.5), blur_prob=0.5, blur_sigma=(0.15, 1.15), flip_prob=0.5)
train_dataloader = dict(
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
