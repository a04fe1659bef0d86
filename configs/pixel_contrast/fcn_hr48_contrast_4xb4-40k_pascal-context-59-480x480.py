# ContrastiveSeg on stock mmseg HRNetV2-W48, PASCAL-Context (59 classes),
# 40k iters; reference PASCAL-Context contrast block (tau = tau_b = 0.07).
_base_ = [
    'mmseg::hrnet/fcn_hr48_4xb4-40k_pascal-context-59-480x480.py',
    './_base_/contrast_warmup_5k.py',
    './_base_/contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

model = dict(
    decode_head=dict(_base_._contrast_head_tau007, type='ContrastFCNHead'))
