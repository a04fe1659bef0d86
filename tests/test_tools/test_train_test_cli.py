"""End-to-end CPU runs of the command-line tools on the real VOC mini set:
``tools/train.py`` -> checkpoint -> ``tools/test.py`` -> ``--resume``, and
mmseg's own ``tools/train.py`` with ``custom_imports`` in the config."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO, 'tests', 'data', 'configs', 'tiny_fcn_voc_mini.py')


def _run(args, cwd=REPO, env_extra=None):
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable] + args, cwd=cwd,
                          capture_output=True, text=True, env=env,
                          timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _data_opts(root):
    return [f'{k}.dataset.data_root={root}'
            for k in ('train_dataloader', 'val_dataloader',
                      'test_dataloader')]


def _miou(text):
    found = re.findall(r'mIoU: ([0-9.]+)', text)
    assert found, text[-3000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def trained(tmp_path_factory, voc_mini_root):
    root = osp.abspath(voc_mini_root)
    work = str(tmp_path_factory.mktemp('e2e'))
    out = _run([
        'tools/train.py', CFG, '--work-dir', work, '--cfg-options',
        *_data_opts(root)
    ])
    return root, work, out


def test_train_saves_and_validates(trained):
    root, work, out = trained
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
    miou = _miou(out)
    assert 0.0 <= miou <= 100.0
    # the checkpoint is an ordinary mmengine checkpoint (message hub with
    # HistoryBuffers, numpy in meta) and loads under torch>=2.6 defaults
    # through the plugin's allowlist
    from mmengine.runner import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(osp.join(work, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4
    assert 'message_hub' in ckpt and 'optimizer' in ckpt
    assert ckpt['meta']['dataset_meta']['classes'][0] == 'background'


def test_test_tool_loads_local_checkpoint(trained):
    root, work, _ = trained
    out = _run([
        'tools/test.py', CFG,
        osp.join(work, 'iter_4.pth'), '--work-dir',
        osp.join(work, 'test'), '--cfg-options', *_data_opts(root)
    ])
    assert 'Load checkpoint from' in out
    _miou(out)


def test_resume_continues_from_last_checkpoint(trained):
    root, work, _ = trained
    out = _run([
        'tools/train.py', CFG, '--work-dir', work, '--resume',
        '--cfg-options', 'train_cfg.max_iters=6', 'train_cfg.val_interval=6',
        *_data_opts(root)
    ])
    assert 'resumed' in out.lower()
    assert 'Iter(train) [5/6]' in out and 'Iter(train) [1/6]' not in out
    assert osp.isfile(osp.join(work, 'iter_6.pth'))
    ckpt = torch.load(osp.join(work, 'iter_6.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 6


def test_mmseg_own_train_tool_with_custom_imports(tmp_path, voc_mini_root):
    """Stock mmseg ``tools/train.py`` works when the config lists
    ``custom_imports=['mmseg_contrast']`` (the compat layer is applied by
    that import before any model is built)."""
    import mmseg
    stock = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                     'train.py')
    if not osp.isfile(stock):
        pytest.fail(f'mmseg install has no {stock}')
    root = osp.abspath(voc_mini_root)
    out = _run([
        stock, CFG, '--work-dir',
        str(tmp_path), '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=2', *_data_opts(root)
    ], cwd=str(tmp_path))
    assert osp.isfile(osp.join(str(tmp_path), 'iter_2.pth'))
    _miou(out)
    logs = glob.glob(osp.join(str(tmp_path), '*', 'vis_data', 'scalars.json'))
    assert logs
    with open(logs[0]) as f:
        first = json.loads(f.readline())
    assert 'loss' in first and 'decode.loss_ce' in first
