# ContrastiveSeg on HRNetV2-W48 (FCN), COCO-Stuff-10k (171 classes), 40k.
# mmseg has no stock HRNet COCO-Stuff config: composed from the stock
# fcn_hr18 model base, the coco-stuff10k dataset, runtime and 40k schedule
# (as deeplabv3_*_coco-stuff10k does), with the HR48 widths of
# fcn_hr48_*. Reference COCO-Stuff contrast block (tau = tau_b = 0.07).
_base_ = [
    'mmseg::_base_/models/fcn_hr18.py',
    'mmseg::_base_/datasets/coco-stuff10k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
    './_base_/contrast_warmup_5k.py',
    './_base_/contrast_head.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

crop_size = (512, 512)
hr48 = [48, 96, 192, 384]
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained='open-mmlab://msra/hrnetv2_w48',
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384)))),
    decode_head=dict(
        _base_._contrast_head_tau007,
        type='ContrastFCNHead',
        in_channels=hr48,
        channels=sum(hr48),
        num_classes=171))
