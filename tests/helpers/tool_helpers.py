"""Helpers for the analysis/publish tool tests: tiny real-data models.

The models are the AAL demo config (DeepLabV3 on MobileNetV2, 16 classes)
with random weights (no training needed to test the tools), evaluated on the
first few real AAL validation slices.
"""
import os.path as osp

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'baseline', 'deeplabv3_mnv2_aal_cpu.py')


def save_model(cfg_options, path, seed):
    from mmengine.config import Config
    from mmseg.registry import MODELS

    from mmseg_contrast.datasets.aal_slices import AALSliceDataset
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(cfg_options)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    meta = dict(dataset_meta=dict(AALSliceDataset.METAINFO))
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return str(path)


CONTRAST_OPTIONS = {
    'model.decode_head.type': 'ContrastASPPHead',
    'model.decode_head.proj_channels': 16,
}


def cli_options(opts):
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]
