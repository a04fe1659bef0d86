# CPU demo: supervised + ReCo on the 5 % labelled split only (ReCo's
# train_sup.py setting): deeplabv3_mnv2_sup-only_5pct-aal_cpu.py with the
# head swapped for ReCoASPPHead.
# Q and N are the paper's 256 / 512 scaled by 1/4: a 128x128 crop gives a
# 16x16 representation map (256 pixels per image) against ReCo's 81x81, and
# the full-size loss would dominate a CPU iteration.
_base_ = ['./deeplabv3_mnv2_sup-only_5pct-aal_cpu.py']
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(
        type='ReCoASPPHead',
        proj_channels=256,
        reco_loss=dict(
            type='ReCoLoss',
            temperature=0.5,
            num_queries=64,
            num_negatives=128,
            strong_threshold=0.97,
            loss_weight=1.0)))
