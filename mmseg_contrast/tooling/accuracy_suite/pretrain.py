"""DenseCL pre-training of the suite's ``densecl_vs_random`` comparison:
one mmpretrain DenseCL run per seed (``tools/train.py``), converted to an
mmseg backbone checkpoint with ``tools/model_converters/densecl2mmseg.py``;
shared by concurrent suite processes through a file lock."""
import functools
import glob
import os
import os.path as osp
import sys
import time

from ..compare import (
    REPO,
    CompareError,
    load_config,
    run_logged,
    schedule_overrides,
)
from ..data.cache import file_lock
from .log import say
from .protocol import ARMS, DENSECL_MMSEG, DENSECL_PRETRAIN

__all__ = [
    'pretrain_cfg', 'densecl_iters', 'densecl_arm', 'densecl_pretrain_dir',
    'densecl_pretrain', 'check_pretrain_length', 'pretrain_and_convert'
]


@functools.lru_cache(maxsize=None)
def pretrain_cfg():
    """The DenseCL pre-training config (loaded once)."""
    return load_config(DENSECL_PRETRAIN)


def densecl_iters(max_iters=None):
    """The DenseCL pre-training length: ``--densecl-iters`` or the
    config's."""
    return int(max_iters or pretrain_cfg().train_cfg.max_iters)


def densecl_arm(max_iters=None):
    """The fine-tuning arm's name: ``densecl100`` for the protocol's
    pre-training length, ``densecl100_<N>it`` for another one (its runs
    get their own work dirs)."""
    n = densecl_iters(max_iters)
    return 'densecl100' if n == densecl_iters() else f'densecl100_{n}it'


def densecl_pretrain_dir(work_root, seed, max_iters=None):
    """Work dir of seed ``seed``'s pre-training of that length."""
    n = densecl_iters(max_iters)
    return osp.join(work_root, f'densecl_pretrain_{n}it',
                    f'seed_{seed}')


def densecl_pretrain(work_root, seed, max_iters=None, log=say):
    """Pre-train (or reuse) seed ``seed``'s DenseCL backbone; return the
    converted mmseg checkpoint. A lock lets several suite processes share
    the pre-training runs."""
    wd = densecl_pretrain_dir(work_root, seed, max_iters)
    os.makedirs(wd, exist_ok=True)
    with file_lock(osp.join(wd, 'pretrain')):
        return pretrain_and_convert(wd, seed, densecl_iters(max_iters), log)


def check_pretrain_length(wd, n):
    """A reused pre-training dir must hold an ``n``-iteration run (its
    dumped config says so)."""
    for f in sorted(glob.glob(osp.join(wd, '*.py'))):
        got = load_config(f).get('train_cfg', {}).get('max_iters')
        if got is not None and int(got) != n:
            raise CompareError(
                f'{wd} holds a {got}-iteration DenseCL pre-training, not the '
                f'{n} asked for: move it away or use --work-dir')


def pretrain_and_convert(wd, seed, n, log=say):
    """Pre-train seed ``seed``'s ``n``-iteration DenseCL backbone in ``wd``
    (resumed if interrupted; only converted if trained) and convert it;
    returns the mmseg checkpoint (reused if already there). The caller
    holds ``wd``'s lock (see :func:`densecl_pretrain`)."""
    out = osp.join(wd, DENSECL_MMSEG)
    check_pretrain_length(wd, n)
    if osp.isfile(out):
        log(f'DenseCL pre-training seed {seed}: reused {out}')
        return out
    py = sys.executable
    last = osp.join(wd, 'last_checkpoint')
    t0 = time.perf_counter()
    arm = f'densecl_pretrain seed {seed}'
    if osp.isfile(last) and osp.isfile(osp.join(wd, f'iter_{n}.pth')):
        # trained, not converted: a resume would replay every batch
        log(f'DenseCL pre-training seed {seed}: trained, converting')
        with open(last, 'w') as f:
            f.write(osp.join(wd, f'iter_{n}.pth'))
    else:
        cfg = pretrain_cfg()
        over = n if n != densecl_iters() else None
        cmd = [py, osp.join(REPO, 'tools/train.py'), DENSECL_PRETRAIN,
               '--work-dir', wd, '--cfg-options', f'randomness.seed={seed}',
               *schedule_overrides(cfg, over)]
        if osp.isfile(last):
            cmd.append('--resume')
        log(f'DenseCL pre-training seed {seed} ({n} iterations) -> {wd}')
        run_logged(cmd, osp.join(wd, 'pretrain.log'), 'train', arm,
                   DENSECL_PRETRAIN)
    with open(osp.join(wd, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    conv = [py, osp.join(REPO, 'tools/model_converters/densecl2mmseg.py'),
            ckpt, out + '.tmp', '--config', ARMS['densecl100']]
    run_logged(conv, osp.join(wd, 'convert.log'),
               'model_converters/densecl2mmseg', arm, ARMS['densecl100'])
    os.replace(out + '.tmp', out)
    log(f'DenseCL pre-training seed {seed}: done in '
        f'{time.perf_counter() - t0:.0f} s')
    return out
