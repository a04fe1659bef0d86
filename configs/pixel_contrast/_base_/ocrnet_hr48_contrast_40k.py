# OCRNet-HRNetV2-W48 with the ContrastiveSeg branch on the OCR stage and the
# 40k schedule, composed from mmseg's stock pieces (the OCRNet model base,
# runtime, schedule_40k; HR48 widths of ocrnet_hr48_*) for the datasets that
# have no stock OCRNet config. Contrast block of the reference's COCO-Stuff /
# PASCAL-Context configs (tau = tau_b = 0.07, warm-up 5000). A leaf adds the
# dataset base, its crop size and the number of classes of both stages.
_base_ = [
    'mmseg::_base_/models/ocrnet_hr18.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
    './contrast_warmup_5k.py',
    './contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

hr48 = [48, 96, 192, 384]
model = dict(
    pretrained='open-mmlab://msra/hrnetv2_w48',
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384)))),
    decode_head=[
        dict(
            _base_.model.decode_head[0],
            in_channels=hr48,
            channels=sum(hr48)),
        dict(
            _base_.model.decode_head[1],
            **_base_._contrast_head_tau007,
            type='ContrastOCRHead',
            in_channels=hr48),
    ])
