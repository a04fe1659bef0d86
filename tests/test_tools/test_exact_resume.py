"""``tools/train.py --resume`` is bit-exact: 3 iterations, then ``--resume``
to 6, equals 6 uninterrupted iterations (weights, BN statistics, memory bank
buffers and pointers, EMA teacher, optimizer state, logged losses) for the
plain demo, the contrast + memory-bank demo and the mean-teacher demo, each
with its real data loader settings (one persistent worker) and dropout on.

For the contrast + memory-bank demo the 3 iterations are a separate run
(``max_iters=3``), whose checkpoint must equal the uninterrupted run's
iteration-3 checkpoint; the other two resume from a copy of that checkpoint
(one process less each).
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CONFIGS = {
    'plain': 'configs/baseline/deeplabv3_mnv2_aal_cpu.py',
    'contrast-mem': 'configs/pixel_contrast/'
    'deeplabv3_mnv2_contrast-mem_aal_cpu.py',
    'meanteacher': 'configs/reco/'
    'deeplabv3_mnv2_meanteacher-classmix_5pct-aal_cpu.py',
}


def _train(cfg, work_dir, opts, resume=False):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir]
    cmd += ['--resume'] if resume else []
    proc = subprocess.run(cmd + ['--cfg-options'] + opts, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _train_logs(work_dir):
    rows = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f if '"loss"' in line]
    return {r['iter']: {k: v for k, v in r.items() if 'loss' in k}
            for r in rows}


def _assert_same_tree(a, b, where):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_tree(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f'{where}[{i}]')
    else:
        assert a == b, where


def _load(work_dir, it):
    return torch.load(osp.join(work_dir, f'iter_{it}.pth'),
                      map_location='cpu', weights_only=False)


def _assert_same_ckpt(a, b):
    for key in ('state_dict', 'optimizer', 'param_schedulers'):
        _assert_same_tree(a[key], b[key], key)
    assert a['meta']['iter'] == b['meta']['iter']
    hub_a, hub_b = a['message_hub'], b['message_hub']
    assert hub_a['log_scalars'].keys() == hub_b['log_scalars'].keys()
    for k, buf in hub_a['log_scalars'].items():
        if k.endswith('time'):  # train/time, train/data_time: wall clock
            continue
        assert buf.data[0].tolist() == hub_b['log_scalars'][k].data[0].tolist(
        ), k


def _options(name, aal_root, ckpt, split_files):
    opts = [
        'train_cfg.max_iters=6', 'train_cfg.val_begin=1000',
        'default_hooks.checkpoint.interval=3',
        'default_hooks.checkpoint.max_keep_ckpts=2',
        'default_hooks.logger.interval=1',
        f'val_dataloader.dataset.data_root={aal_root}',
        'val_dataloader.dataset.indices=1',
    ]
    if name == 'meanteacher':
        lab, unl = split_files
        ds = 'train_dataloader.dataset.datasets'
        opts += [
            'train_dataloader.batch_size=4',
            'train_dataloader.sampler.batch_size=4',
            f'{ds}.0.ann_file={lab}', f'{ds}.1.ann_file={unl}',
            f'{ds}.0.data_root={aal_root}', f'{ds}.1.data_root={aal_root}',
            f'model.segmentor.backbone.init_cfg.checkpoint={ckpt}',
        ]
    else:
        opts += [
            'train_dataloader.batch_size=2',
            f'train_dataloader.dataset.data_root={aal_root}',
            f'model.backbone.init_cfg.checkpoint={ckpt}',
        ]
    if name == 'contrast-mem':
        # contrast term (anchor sampling against the bank) on from iter 1
        opts.append('custom_hooks.1.warmup_iters=1')
    return opts


@pytest.mark.parametrize('name', list(CONFIGS))
def test_resume_is_bit_exact(name, tmp_path, aal_root, mobilenetv2_ckpt,
                             split_files):
    cfg = CONFIGS[name]
    opts = _options(name, aal_root, mobilenetv2_ckpt, split_files)
    straight, parted = str(tmp_path / 'straight'), str(tmp_path / 'parted')
    _train(cfg, straight, opts)
    if name == 'contrast-mem':
        _train(cfg, parted, opts[1:] + ['train_cfg.max_iters=3'])
        _assert_same_ckpt(_load(straight, 3), _load(parted, 3))
    else:
        os.makedirs(parted)
        shutil.copy(osp.join(straight, 'iter_3.pth'), parted)
        with open(osp.join(parted, 'last_checkpoint'), 'w') as f:
            f.write(osp.join(parted, 'iter_3.pth'))
    out = _train(cfg, parted, opts, resume=True)
    assert 'resumed epoch: 0, iter: 3' in out

    a, b = _load(straight, 6), _load(parted, 6)
    _assert_same_ckpt(a, b)
    keys = list(a['state_dict'])
    if name == 'contrast-mem':
        bank = [k for k in keys if '.memory_bank.' in k]
        assert len(bank) == 7
        assert int(a['state_dict']['decode_head.memory_bank.num_updates']) \
            == 6
    if name == 'meanteacher':
        # the teacher (plain segmentor keys) and the student
        student = [k for k in keys if k.startswith('student.')]
        assert student and len(student) == len(keys) // 2

    # the logged losses of iterations 4-6 (the resumed ones) are identical
    logs_a, logs_b = _train_logs(straight), _train_logs(parted)
    assert sorted(logs_a) == [1, 2, 3, 4, 5, 6]
    assert sorted(logs_b) == ([1, 2, 3, 4, 5, 6] if name == 'contrast-mem'
                              else [4, 5, 6])
    for it in (4, 5, 6):
        assert logs_a[it] == logs_b[it], (it, logs_a[it], logs_b[it])
    if name == 'contrast-mem':
        assert all(logs_a[it]['decode.loss_contrast'] > 0 for it in (4, 5, 6))


def test_train_tool_adds_the_seed_hook_once():
    from mmengine.config import Config

    from helpers.tool_loading import load_tool
    train = load_tool('train.py')
    cfg = Config(dict(custom_hooks=[dict(type='PixelMemoryBankHook')]))
    train.add_hook_once(cfg, 'IterationSeedHook')
    assert [h['type'] for h in cfg.custom_hooks] == [
        'PixelMemoryBankHook', 'mmseg.IterationSeedHook']
    own = Config(dict(custom_hooks=[dict(type='IterationSeedHook', seed=3)]))
    train.add_hook_once(own, 'IterationSeedHook')
    assert own.custom_hooks == [dict(type='IterationSeedHook', seed=3)]
    empty = Config(dict())
    train.add_hook_once(empty, 'IterationSeedHook')
    assert empty.custom_hooks == [dict(type='mmseg.IterationSeedHook')]
    # the added hooks build in another default scope (DenseCL pre-training)
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import HOOKS
    for name in ('IterationSeedHook', 'LabelRangeCheckHook'):
        cfg = Config(dict())
        train.add_hook_once(cfg, name)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            hook = HOOKS.build(cfg.custom_hooks[0])
        assert type(hook).__name__ == name
