"""Tiny segmentor configs and synthetic semi-supervised batches for tests."""
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

NUM_CLASSES = 4


def tiny_segmentor_cfg(reco=True, num_classes=NUM_CLASSES):
    head = dict(
        type='ReCoASPPHead' if reco else 'ASPPHead',
        in_channels=32,
        channels=16,
        dilations=(1, 2),
        dropout_ratio=0.0,
        num_classes=num_classes,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0, avg_non_ignore=True))
    if reco:
        head.update(proj_channels=8,
                    reco_loss=dict(type='ReCoLoss', num_queries=16,
                                   num_negatives=32))
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[120., 120., 120.],
            std=[50., 50., 50.], bgr_to_rgb=True, pad_val=0,
            seg_pad_val=255, size=(32, 32)),
        backbone=dict(
            type='ResNetV1c', depth=18, base_channels=4, stem_channels=8,
            num_stages=4, out_indices=(3, ), strides=(1, 2, 1, 1),
            dilations=(1, 1, 2, 4), norm_cfg=dict(type='BN',
                                                  requires_grad=True)),
        decode_head=head,
        auxiliary_head=dict(
            type='FCNHead', in_channels=32, channels=8, num_convs=1,
            num_classes=num_classes, dropout_ratio=0.0, concat_input=False,
            norm_cfg=dict(type='BN', requires_grad=True),
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
        train_cfg=dict(),
        test_cfg=ConfigDict(mode='whole'))


def semi_cfg(reco=True, **train_cfg):
    return dict(type='SemiSegmentor', segmentor=tiny_segmentor_cfg(reco),
                semi_train_cfg=train_cfg)


def make_batch(n_lab=2, n_unl=2, size=32, seed=0, strong=True):
    """Raw (uint8, BGR) batch as the dataloader yields it."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(n_lab + n_unl):
        label = torch.zeros(size, size, dtype=torch.long)
        label[:, size // 2:] = 1
        label[size // 2:, :] = (i % 3) + 2 if (i % 3) + 2 < NUM_CLASSES \
            else 3
        img = (label * 60 + 20).to(torch.uint8)[None].repeat(3, 1, 1)
        img = (img.int() + torch.randint(0, 20, img.shape, generator=g)
               ).clamp(0, 255).to(torch.uint8)
        ds = SegDataSample()
        ds.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size)))
        if i < n_lab:
            ds.gt_sem_seg = PixelData(data=label[None])
        elif strong:
            ds.set_field((255 - img.int()).to(torch.uint8), 'img_strong')
        inputs.append(img)
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def quiet_init(model):
    """``model.init_weights()`` without mmengine's per-parameter INFO log."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model
