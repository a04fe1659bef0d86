"""A checkpoint that does not fit the model is an error naming the fix,
not random weights with a log line."""
import os.path as osp
import sys

import pytest
import torch

from mmseg_contrast.checkpoint.errors import (
    CheckpointMismatchError,
    CheckpointMismatchWarning,
)

from helpers.reliab_helpers import TINY_CFG, data_options
from helpers.tool_loading import load_tool

BN = dict(type='BN', requires_grad=True)


# ------------------------------------------------------- checkpoint match
def _save(path, state_dict):
    torch.save({'state_dict': state_dict, 'meta': {}}, str(path))
    return str(path)


def test_checkpoint_of_another_model_is_an_error(tmp_path):
    from mmengine.runner import load_checkpoint
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                              torch.nn.BatchNorm2d(4))
    other = _save(tmp_path / 'other.pth', {'fc.weight': torch.zeros(2, 2)})
    with pytest.raises(CheckpointMismatchError) as exc:
        load_checkpoint(net, other)
    msg = str(exc.value)
    assert 'other.pth' in msg and "'fc.weight'" in msg and "'0.weight'" in msg
    empty = _save(tmp_path / 'empty.pth', {})
    with pytest.raises(CheckpointMismatchError, match='holds no weights'):
        load_checkpoint(net, empty)
    # a partial match (e.g. another number of classes) only warns
    part = _save(tmp_path / 'part.pth', {'0.weight': torch.ones(4, 3, 3, 3),
                                         '1.weight': torch.ones(7)})
    with pytest.warns(CheckpointMismatchWarning, match='only 1 of 6'):
        load_checkpoint(net, part)
    assert torch.equal(net[0].weight, torch.ones(4, 3, 3, 3))


def test_prefix_hints(tmp_path):
    from mmengine.model import PretrainedInit
    from mmengine.runner import load_checkpoint
    backbone = torch.nn.Conv2d(3, 4, 3)
    full = _save(tmp_path / 'full.pth', {
        f'backbone.{k}': v for k, v in backbone.state_dict().items()})
    with pytest.raises(CheckpointMismatchError, match="prefix='backbone.'"):
        PretrainedInit(checkpoint=full)(backbone)
    PretrainedInit(checkpoint=full, prefix='backbone.')(backbone)  # the fix
    model = torch.nn.Module()
    model.backbone = torch.nn.Conv2d(3, 4, 3)
    only = _save(tmp_path / 'bb.pth', backbone.state_dict())
    with pytest.raises(CheckpointMismatchError,
                       match=r'model\.backbone\.init_cfg'):
        load_checkpoint(model, only)


def test_test_tool_refuses_a_checkpoint_of_another_model(
        monkeypatch, tmp_path, voc_mini_root):
    ckpt = _save(tmp_path / 'mnv2.pth', {
        'backbone.conv1.conv.weight': torch.zeros(32, 3, 3, 3),
        'decode_head.bottleneck.conv.weight': torch.zeros(8, 8, 3, 3)})
    monkeypatch.setattr(sys, 'argv', [
        'test.py', TINY_CFG, ckpt, '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', *data_options(voc_mini_root, 'other_model')])
    with pytest.raises(CheckpointMismatchError) as exc:
        load_tool('test.py').main()
    assert osp.basename(ckpt) in str(exc.value)
    assert 'shares no parameter name' in str(exc.value)
