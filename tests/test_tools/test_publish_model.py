import hashlib
import os.path as osp
import re
from pathlib import Path

import pytest
import torch

from mmseg_contrast.checkpoint import load_checkpoint_file
from mmseg_contrast.tooling.embedding_analysis import CheckpointMismatchError
from mmseg_contrast.tooling.publish import is_memory_key, strip_checkpoint

from helpers.tool_helpers import CONFIG, CONTRAST_OPTIONS
from helpers.tool_loading import load_tool

publish = load_tool('misc/publish_model.py')


def _training_ckpt(path, semi=None):
    sd = {
        'backbone.conv1.weight': torch.randn(4, 3, 3, 3),
        'decode_head.conv_seg.weight': torch.randn(16, 4, 1, 1),
        'decode_head.proj_head.layers.1.weight': torch.randn(8, 4, 1, 1),
        'decode_head.memory_bank.pixel_queue': torch.randn(16, 10, 8),
        'decode_head.memory_bank.pixel_queue_ptr': torch.zeros(16),
        'decode_head.segment_queue': torch.randn(16, 10, 8),
        'queue_ptr': torch.zeros(1),
    }
    if semi == 'mmseg_contrast':  # teacher = plain keys, student.*
        sd = dict(**sd, **{f'student.{k}': v + 1 for k, v in sd.items()})
    elif semi == 'mmdet':  # teacher.* + student.*
        sd = dict(**{f'student.{k}': v + 1 for k, v in sd.items()},
                  **{f'teacher.{k}': v.clone() for k, v in sd.items()})
    ckpt = {
        'meta': {'dataset_meta': {'classes': ('a', 'b')}, 'iter': 10,
                 'hook_msgs': {'last_ckpt': 'somewhere/iter_10.pth'}},
        'state_dict': sd,
        'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1}]},
        'param_schedulers': [{'last_step': 10}],
        'message_hub': {'log_scalars': {}},
        'ema_state_dict': {'steps': torch.tensor(1)},
    }
    torch.save(ckpt, path)
    return ckpt


def test_memory_key_patterns():
    assert is_memory_key('decode_head.memory_bank.pixel_queue')
    assert is_memory_key('decode_head.segment_queue')
    assert is_memory_key('head.pixel_queue_ptr')
    assert not is_memory_key('ptr_x')
    assert not is_memory_key('decode_head.conv_seg.weight')
    assert not is_memory_key('backbone.layer1.0.bn.running_mean')


def test_publish_strips_and_names_by_hash(tmp_path):
    src = str(tmp_path / 'iter_10.pth')
    _training_ckpt(src)
    final = publish.main([src, str(tmp_path / 'out' / 'my_cfg.pth'),
                          '--date', '20260102'])
    name = osp.basename(final)
    m = re.fullmatch(r'my_cfg_20260102-([0-9a-f]{8})\.pth', name)
    assert m, name
    digest = hashlib.sha256(Path(final).read_bytes()).hexdigest()
    assert digest.startswith(m.group(1))  # hash of the written file
    out = load_checkpoint_file(final)
    assert set(out) == {'meta', 'state_dict'}
    assert out['meta'] == {'dataset_meta': {'classes': ('a', 'b')},
                           'iter': 10}
    assert sorted(out['state_dict']) == [
        'backbone.conv1.weight', 'decode_head.conv_seg.weight',
        'decode_head.proj_head.layers.1.weight'
    ]
    final2 = publish.main([src, str(tmp_path / 'out' / 'my_cfg'),
                           '--strip-proj', '--date', '20260102'])
    assert final2 != final
    assert sorted(load_checkpoint_file(final2)['state_dict']) == [
        'backbone.conv1.weight', 'decode_head.conv_seg.weight'
    ]


@pytest.mark.parametrize('layout', ['mmseg_contrast', 'mmdet'])
def test_publish_semi_supervised(tmp_path, layout):
    ckpt = _training_ckpt(str(tmp_path / 'semi.pth'), semi=layout)
    w = 'decode_head.conv_seg.weight'
    teacher_w = ckpt['state_dict'][
        w if layout == 'mmseg_contrast' else f'teacher.{w}']
    student_w = ckpt['state_dict'][f'student.{w}']
    for branch, ref in (('teacher', teacher_w), ('student', student_w)):
        out, removed = strip_checkpoint(ckpt, semi_branch=branch)
        sd = out['state_dict']
        other = 'student' if branch == 'teacher' else 'teacher'
        assert removed[f'semi_{other}'] == 7 and removed['memory'] == 4
        # plain keys only: loads into the supervised config
        assert sorted(sd) == ['backbone.conv1.weight', w,
                              'decode_head.proj_head.layers.1.weight']
        assert torch.equal(sd[w], ref)


def test_publish_checks_config(tmp_path, contrast_ckpt, ce_ckpt):
    # a contrast checkpoint published without proj head / memory still
    # loads into its config (and into the CE config)
    final = publish.main([
        contrast_ckpt, str(tmp_path / 'c'), '--strip-proj', '--config',
        CONFIG, '--cfg-options'
    ] + [f'{k}={v}' for k, v in CONTRAST_OPTIONS.items()])
    assert not any('proj_head' in k
                   for k in load_checkpoint_file(final)['state_dict'])
    # default output stem = config stem next to the input
    final = publish.main([ce_ckpt, '--config', CONFIG])
    assert osp.basename(final).startswith('deeplabv3_mnv2_aal_cpu_')
    assert osp.dirname(final) == osp.dirname(ce_ckpt)
    # mismatched: 16-class checkpoint vs a 5-class config -> refused, no file
    with pytest.raises(CheckpointMismatchError, match='16-class head'):
        publish.main([
            ce_ckpt, str(tmp_path / 'bad'), '--config', CONFIG,
            '--cfg-options', 'model.decode_head.num_classes=5'
        ])
    assert not list(tmp_path.glob('bad*'))
    with pytest.raises(FileNotFoundError, match='Checkpoint not found'):
        publish.main([str(tmp_path / 'missing.pth'), str(tmp_path / 'o')])
