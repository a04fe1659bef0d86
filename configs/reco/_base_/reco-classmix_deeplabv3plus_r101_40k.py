# ReCo + ClassMix (ReCo's train_semisup.py) around the supervised model and
# schedule of reco_deeplabv3plus_r101_40k.py: the segmentor wrapped by
# SemiSegmentor (EMA mean teacher, ClassMix on the unlabelled batch,
# unsupervised CE weighted by the per-image share of confident
# pseudo-labels, ReCo on labelled + unlabelled pixels), the teacher's decay
# min(1 - 1/(t+1), 0.99) and the best teacher mIoU kept. The dataset
# protocol (reco-classmix_<dataset>.py) adds the dataset's classes, crop and
# unsup_aug to the segmentor and the labelled + unlabelled loader.
_base_ = ['./reco_deeplabv3plus_r101_40k.py']

model = dict(
    _delete_=True,
    type='SemiSegmentor',
    segmentor=_base_.model,
    semi_train_cfg=dict(
        sup_weight=1.0,
        unsup_weight=1.0,
        weak_threshold=0.7,
        strong_threshold=0.97,
        unsup_weighting='ratio',
        mix_mode='classmix',
        reco=True),
    semi_test_cfg=dict(predict_on='teacher'))
custom_hooks = [dict(type='MeanTeacherHook', max_decay=0.99)]
val_cfg = dict(type='TeacherStudentValLoop')
default_hooks = dict(checkpoint=dict(save_best='teacher/mIoU'))
