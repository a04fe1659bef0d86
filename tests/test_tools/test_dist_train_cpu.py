"""``tools/dist_train.sh CONFIG 2`` on a CPU-only machine: torchrun, gloo,
the Runner and the real demo configs, a few iterations. Both ranks must end
with the identical memory bank (holding both ranks' images) and the
identical EMA teacher."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))
ITERS = 3

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason='the CPU launcher path is only taken '
    'without CUDA (with GPUs mmengine runs its own code)')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist_train(base_cfg, work_dir, opts):
    # the real config plus the test-only dump hook
    cfg = osp.join(work_dir, 'cfg.py')
    os.makedirs(work_dir, exist_ok=True)
    with open(cfg, 'w') as f:
        f.write(f'_base_ = [{osp.join(REPO, base_cfg)!r}]\n'
                "custom_imports = dict(imports=['mmseg_contrast', "
                "'dist_state_dump'], allow_failed_imports=False)\n"
                "default_hooks = dict(rank_dump=dict(type='DumpRankStateHook'"
                '))\n')
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(_free_port()),
               PYTHONPATH=os.pathsep.join(
                   [HERE, os.environ.get('PYTHONPATH', '')]),
               PATH=os.pathsep.join([osp.dirname(sys.executable),
                                     os.environ.get('PATH', '')]))
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', work_dir,
         '--cfg-options', f'train_cfg.max_iters={ITERS}',
         'train_cfg.val_begin=1000', 'default_hooks.logger.interval=1',
         'val_dataloader.dataset.indices=2'] + opts,
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert f'Iter(train) [{ITERS}/{ITERS}]' in out
    states = [torch.load(osp.join(work_dir, f'rank{r}_state.pth'),
                         map_location='cpu', weights_only=False)
              for r in range(2)]
    for s in states:
        assert s['world_size'] == 2 and s['iter'] == ITERS
    return states


def _same(states, keys):
    assert keys
    for k in keys:
        assert torch.equal(states[0]['state_dict'][k],
                           states[1]['state_dict'][k]), k


def test_dist_train_contrast_memory_bank(tmp_path, aal_root,
                                         mobilenetv2_ckpt):
    states = _dist_train(
        'configs/pixel_contrast/deeplabv3_mnv2_contrast-mem_aal_cpu.py',
        str(tmp_path), [
            'train_dataloader.batch_size=2',
            f'train_dataloader.dataset.data_root={aal_root}',
            f'val_dataloader.dataset.data_root={aal_root}',
            f'model.backbone.init_cfg.checkpoint={mobilenetv2_ckpt}',
            'custom_hooks.1.warmup_iters=1'
        ])
    sd = states[0]['state_dict']
    bank = [k for k in sd if '.memory_bank.' in k]
    assert len(bank) == 7
    _same(states, bank)
    # DDP: identical student weights
    _same(states, [k for k in sd if k.endswith('.weight')])
    assert int(sd['decode_head.memory_bank.num_updates']) == ITERS
    # the bank holds both ranks' segments (no ring wrap at this size):
    # per class, the (image, class) occurrences of rank 0 plus rank 1
    seg = states[0]['segments'] + states[1]['segments']
    assert torch.equal(sd['decode_head.memory_bank.segment_count'], seg)
    assert not torch.equal(states[0]['segments'], states[1]['segments'])
    # 10 pixels per (image, class) at most, at least one per segment
    pix = sd['decode_head.memory_bank.pixel_count']
    assert (pix <= 10 * seg).all() and (pix >= seg).all()


def test_dist_train_mean_teacher(tmp_path, aal_root, mobilenetv2_ckpt,
                                 split_files):
    lab, unl = split_files
    ds = 'train_dataloader.dataset.datasets'
    states = _dist_train(
        'configs/reco/deeplabv3_mnv2_meanteacher-classmix_5pct-aal_cpu.py',
        str(tmp_path), [
            'train_dataloader.batch_size=4',
            'train_dataloader.sampler.batch_size=4',
            f'{ds}.0.ann_file={lab}', f'{ds}.1.ann_file={unl}',
            f'{ds}.0.data_root={aal_root}', f'{ds}.1.data_root={aal_root}',
            f'val_dataloader.dataset.data_root={aal_root}',
            f'model.segmentor.backbone.init_cfg.checkpoint={mobilenetv2_ckpt}',
            # the config's horizon (1/10 of the schedule) is < 1 update for
            # a 3-iteration run, i.e. teacher = student; widen it
            'custom_hooks.0.horizon=1.0',
        ])
    sd = states[0]['state_dict']
    # SemiSegmentor keeps the teacher under the plain segmentor's keys
    teacher = [k for k in sd if not k.startswith('student.')]
    assert len(teacher) == len(sd) // 2
    _same(states, teacher)  # parameters and (all-reduced) BN statistics
    _same(states, [k for k in sd if k.startswith('student.')
                   and k.endswith('.weight')])
    # the teacher moved away from its initial copy of the student
    assert not all(torch.equal(sd[k], sd['student.' + k])
                   for k in teacher if k.endswith('.weight'))
