# CPU demo: mean teacher + ClassMix + ReCo on the 5 % labelled split of the
# AAL slices. Identical to deeplabv3_mnv2_meanteacher-classmix_5pct-aal_cpu.py
# except the student's head: ReCoASPPHead (ASPPHead + ReCo representation
# head conv3x3-BN-ReLU-conv1x1, 256-d) whose ReCo loss SemiSegmentor pools
# over the labelled and the unlabelled images (valid: ground truth, or
# teacher confidence >= 0.7; hard queries: student p < 0.97).
# Q and N are the paper's 256 / 512 scaled by 1/4: a 128x128 crop gives a
# 16x16 representation map (256 pixels per image) against ReCo's 81x81, and
# the full-size loss would dominate a CPU iteration.
_base_ = ['./deeplabv3_mnv2_meanteacher-classmix_5pct-aal_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
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
