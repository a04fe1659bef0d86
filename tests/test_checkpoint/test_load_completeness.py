"""A checkpoint that would leave the model (almost) random is an error or a
warning with counts, not a log line (:mod:`mmseg_contrast.checkpoint.
matching`)."""
import sys
import warnings

import pytest
import torch
import torch.nn as nn

from mmseg_contrast.checkpoint import CheckpointMismatchError
from mmseg_contrast.checkpoint.errors import CheckpointMismatchWarning

from helpers.reliab_helpers import TINY_CFG, data_options
from helpers.tool_loading import load_tool


def _net(width=8, classes=5):
    return nn.Sequential(
        nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, classes, 1))


def _save(path, state_dict):
    torch.save({'state_dict': state_dict, 'meta': {}}, str(path))
    return str(path)


def _load(net, path):
    from mmengine.runner import load_checkpoint
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        load_checkpoint(net, path, map_location='cpu')
    return [w for w in caught
            if issubclass(w.category, CheckpointMismatchWarning)]


def test_same_architecture_at_another_width(tmp_path):
    """Same keys, every shape different: nothing would load (before: 14
    random floating-point tensors and a log line)."""
    path = _save(tmp_path / 'wide.pth',
                 _net(width=16, classes=7).state_dict())
    with pytest.raises(CheckpointMismatchError) as exc:
        _load(_net(width=8), path)
    msg = str(exc.value)
    assert 'wide.pth' in msg and '0 of 14 floating-point parameters' in msg
    assert "'0.weight': checkpoint (16, 3, 3, 3), model (8, 3, 3, 3)" in msg


def test_only_integer_buffers_shared(tmp_path):
    sd = {k: v for k, v in _net().state_dict().items()
          if k.endswith('num_batches_tracked')}
    sd['head.weight'] = torch.zeros(3)
    path = _save(tmp_path / 'counters.pth', sd)
    with pytest.raises(CheckpointMismatchError, match='integer buffers'):
        _load(_net(), path)


def test_less_than_half_warns_with_counts(tmp_path):
    net = _net()
    first = {k: v for k, v in net.state_dict().items() if k.startswith('0.')}
    path = _save(tmp_path / 'part.pth', first)
    caught = _load(_net(), path)
    assert len(caught) == 1
    assert '2 of 14 floating-point parameters loaded' in str(
        caught[0].message)
    assert 'part.pth' in str(caught[0].message)


def test_fine_tuning_to_other_classes_only_logs(tmp_path):
    """Only the classifier differs (another number of classes): it loads
    with mmengine's usual size-mismatch log, no new warning."""
    src = _net(classes=19)
    path = _save(tmp_path / 'city.pth', src.state_dict())
    dst = _net(classes=5)
    assert _load(dst, path) == []
    assert torch.equal(dst[0].weight, src[0].weight)


def _tiny_model(**widths):
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(TINY_CFG)
    if widths:
        cfg.model.backbone.stem_channels = 4
        cfg.model.backbone.base_channels = 4
        cfg.model.decode_head.in_channels = 32
        cfg.model.decode_head.channels = 8
        cfg.model.decode_head.num_classes = widths.get('classes', 21)
    return MODELS.build(cfg.model)


def test_narrower_model_loads_one_tensor_of_117(tmp_path):
    """The tiny FCN at half width: only the classifier bias (21 classes)
    fits; before, a log line and 116 of 117 random tensors."""
    ckpt = _save(tmp_path / 'narrow.pth', _tiny_model(half=True).state_dict())
    caught = _load(_tiny_model(), ckpt)
    assert len(caught) == 1
    assert '1 of 117 floating-point parameters loaded' in str(
        caught[0].message)


def test_test_tool_refuses_a_narrower_model(monkeypatch, tmp_path,
                                            voc_mini_root):
    """tools/test.py with the tiny config and a checkpoint of the same model
    at half width (and 19 classes): not one tensor fits."""
    narrow = _tiny_model(half=True, classes=19)
    ckpt = _save(tmp_path / 'narrow.pth', narrow.state_dict())
    monkeypatch.setattr(sys, 'argv', [
        'test.py', TINY_CFG, ckpt, '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', *data_options(voc_mini_root, 'narrow_model')])
    with pytest.raises(CheckpointMismatchError) as exc:
        load_tool('test.py').main()
    msg = str(exc.value)
    assert 'narrow.pth' in msg and 'another shape' in msg
    assert '0 of 117 floating-point parameters' in msg
