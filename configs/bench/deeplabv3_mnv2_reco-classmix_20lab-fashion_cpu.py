# Accuracy suite, semi-supervised + ReCo arm: identical to
# deeplabv3_mnv2_meanteacher-classmix_20lab-fashion_cpu.py except the
# student's head, ReCoASPPHead (+ ReCo representation head, 256-d), whose
# ReCo loss is pooled over the labelled and unlabelled canvases (valid:
# ground truth, or teacher confidence >= 0.7; hard queries: p < 0.97).
# Q / N are the paper's 256 / 512 scaled by 1/4 for the 16x16 maps (256
# pixels per canvas against ReCo's 81x81).
_base_ = ['./deeplabv3_mnv2_meanteacher-classmix_20lab-fashion_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    semi_train_cfg=dict(reco=True),
    segmentor=dict(
        decode_head=dict(
            type='ReCoASPPHead',
            proj_channels=256,
            reco_loss=dict(
                type='ReCoLoss',
                temperature=0.5,
                num_queries=64,
                num_negatives=128,
                strong_threshold=0.97,
                loss_weight=1.0))))
