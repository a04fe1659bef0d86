"""A training process killed at any point of a checkpoint save leaves a
work dir that ``tools/train.py --resume`` finishes, for any
``max_keep_ckpts``; a missing, empty or unreadable ``last_checkpoint``
falls back to the newest loadable checkpoint."""
import os
import os.path as osp
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmseg_contrast.checkpoint import load_checkpoint_file
from mmseg_contrast.checkpoint.resume import (
    NoResumableCheckpointError,
    find_resume_checkpoint,
)

from helpers.reliab_helpers import REPO, TINY_CFG, data_options

CRASH = osp.join(REPO, 'tests', 'helpers', 'crash_train.py')
TRAIN = osp.join(REPO, 'tools', 'train.py')


def _args(work, root, keep):
    return [
        TINY_CFG, '--work-dir', str(work), '--cfg-options',
        *data_options(root, 'crash'), 'train_cfg.max_iters=3',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1',
        f'default_hooks.checkpoint.max_keep_ckpts={keep}'
    ]


def _run(cmd):
    return subprocess.run([sys.executable, *cmd], cwd=REPO, timeout=600,
                          capture_output=True, text=True)


def _iter_of(path):
    ckpt = load_checkpoint_file(str(path), map_location='cpu')  # safe loader
    return ckpt['meta']['iter']


@pytest.mark.parametrize('point,keep', [
    ('write', 1), ('rename', 1), ('last_checkpoint', 1), ('remove', 1),
    ('write', -1), ('last_checkpoint', -1)])
def test_killed_save_resumes(tmp_path, voc_mini_root, point, keep):
    work = tmp_path / 'w'
    crashed = _run([CRASH, point, '2', '--', *_args(work, voc_mini_root,
                                                     keep)])
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    with open(work / 'last_checkpoint') as f:
        named = f.read().strip()
    assert osp.isfile(named)  # never a record of a missing file
    resumed = _run([TRAIN, *_args(work, voc_mini_root, keep), '--resume'])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = work / 'iter_3.pth'
    assert _iter_of(final) == 3
    with open(work / 'last_checkpoint') as f:
        assert f.read().strip() == str(final)
    kept = sorted(p.name for p in work.glob('iter_*.pth'))
    assert kept == (['iter_3.pth'] if keep == 1 else
                    ['iter_1.pth', 'iter_2.pth', 'iter_3.pth'])
    assert not [n for n in os.listdir(work) if n.endswith('.tmp')]


def test_control_mmengine_hook_loses_the_run(tmp_path, voc_mini_root):
    """The same crash with mmengine's own CheckpointHook: it deleted iter_1
    before writing iter_2, so nothing is left to resume from (the error
    names the work dir instead of mmengine's FileNotFoundError)."""
    work = tmp_path / 'w'
    args = _args(work, voc_mini_root, 1) + [
        'default_hooks.checkpoint.type=PlainCheckpointHook']
    crashed = _run([CRASH, 'write', '2', '--', *args])
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert not (work / 'iter_1.pth').exists()
    resumed = _run([CRASH, 'none', '0', '--', *args, '--resume'])
    assert resumed.returncode != 0
    assert 'NoResumableCheckpointError' in resumed.stderr
    assert str(work) in resumed.stderr


def _save(path, it):
    torch.save({'meta': {'iter': it}, 'state_dict': {}}, str(path))
    return str(path)


def test_resume_choice_without_a_usable_record(tmp_path):
    assert find_resume_checkpoint(str(tmp_path)) is None  # fresh start
    good = _save(tmp_path / 'iter_2.pth', 2)
    newest = tmp_path / 'iter_4.pth'
    newest.write_bytes(Path(good).read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match='no last_checkpoint'):
        assert find_resume_checkpoint(str(tmp_path)) == good
    record = tmp_path / 'last_checkpoint'
    record.write_text('')
    with pytest.warns(UserWarning, match='is empty'):
        assert find_resume_checkpoint(str(tmp_path)) == good
    record.write_text(str(tmp_path / 'iter_3.pth'))
    with pytest.warns(UserWarning) as rec:
        assert find_resume_checkpoint(str(tmp_path)) == good
    msg = str(rec[0].message)
    assert 'iter_3.pth, which does not exist' in msg and good in msg
    record.write_text(str(newest))
    with pytest.warns(UserWarning, match='is unreadable'):
        assert find_resume_checkpoint(str(tmp_path)) == good
    record.write_text(good)
    assert find_resume_checkpoint(str(tmp_path)) == good


def test_no_loadable_checkpoint_is_one_error_naming_the_work_dir(tmp_path):
    (tmp_path / 'iter_2.pth').write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    with pytest.raises(NoResumableCheckpointError) as exc:
        find_resume_checkpoint(str(tmp_path))
    assert str(tmp_path) in str(exc.value)
    assert 'Start without --resume' in str(exc.value)
