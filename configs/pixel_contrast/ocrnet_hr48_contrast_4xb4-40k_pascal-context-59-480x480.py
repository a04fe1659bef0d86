# ContrastiveSeg on OCRNet-HRNetV2-W48, PASCAL-Context (59 classes), 40k.
# mmseg has no stock OCRNet config for PASCAL-Context, so this composes the
# stock pieces the way mmseg's own HRNet PASCAL-Context configs do: the
# OCRNet model base, the pascal_context_59 dataset, runtime and 40k schedule,
# the HR48 widths of ocrnet_hr48_*_cityscapes and the crop / slide test /
# SGD settings of fcn_hr48_4xb4-40k_pascal-context-59-480x480.
_base_ = [
    'mmseg::_base_/models/ocrnet_hr18.py',
    'mmseg::_base_/datasets/pascal_context_59.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

crop_size = (480, 480)
hr48 = [48, 96, 192, 384]
model = dict(
    data_preprocessor=dict(size=crop_size),
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
            channels=sum(hr48),
            num_classes=59),
        dict(
            _base_.model.decode_head[1],
            type='ContrastOCRHead',
            proj_in='backbone',
            in_channels=hr48,
            num_classes=59,
            proj_channels=256,
            contrast_loss=dict(
                type='PixelContrastLoss',
                temperature=0.07,
                base_temperature=0.07,
                max_samples=1024,
                max_views=100,
                ignore_index=255,
                loss_weight=0.1)),
    ],
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(320, 320)))
optimizer = dict(type='SGD', lr=0.004, momentum=0.9, weight_decay=0.0001)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
custom_hooks = [dict(type='ContrastWarmupHook', warmup_iters=5000)]
