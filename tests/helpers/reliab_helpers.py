"""Hostile pickles and helpers for the reliability tests.

Each payload's ``__reduce__`` would create ``marker`` when unpickled without
restriction: ``os.system('touch ...')``, ``exec(...)`` or ``open(..., 'w')``.
"""
import os
import os.path as osp

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CFG = osp.join(REPO, 'tests', 'data', 'configs', 'tiny_fcn_voc_mini.py')


class SystemPayload:

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class ExecPayload(SystemPayload):

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()", ))


class OpenPayload(SystemPayload):

    def __reduce__(self):
        return (open, (self.marker, 'w'))


PAYLOADS = {'system': SystemPayload, 'exec': ExecPayload, 'open': OpenPayload}


def save_hostile(path, marker, kind='system', legacy=False, state_dict=None):
    """A checkpoint that looks ordinary but carries a payload in ``meta``."""
    ckpt = {
        'meta': {'iter': 4, 'note': PAYLOADS[kind](marker)},
        'state_dict': state_dict or {'decode_head.conv_seg.bias':
                                     torch.zeros(21)},
    }
    torch.save(ckpt, str(path), _use_new_zipfile_serialization=not legacy)
    return str(path)


def data_options(root, name):
    """``--cfg-options`` for the tiny config on the VOC mini set, with a
    unique experiment name (several runners in one process)."""
    opts = [f'{k}.dataset.data_root={root}'
            for k in ('train_dataloader', 'val_dataloader',
                      'test_dataloader')]
    return opts + [f'experiment_name={name}', 'log_level=ERROR']
