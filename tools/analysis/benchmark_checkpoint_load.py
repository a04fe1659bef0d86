"""Cost of the safe loader's checks against a bare ``torch.load``: the
integrity check (CRC-32 of every record, and sha256 when the name carries a
hash) and the resource bounds (a walk over the pickle, before unpickling).

    python tools/analysis/benchmark_checkpoint_load.py [--mb 200] \\
        [--repeat 5] [--log-iters 10000]

Writes a checkpoint of ``--mb`` MiB of float32 tensors (ResNet-like sizes)
with an mmengine-like message hub (``HistoryBuffer`` logs of
``--log-iters`` iterations for 6 scalars) into a temporary folder, reads it
once to warm the page cache, then times every loader ``--repeat`` times,
interleaved (machine load hits them alike), and prints the best time of
each and its ratio to ``torch.load(weights_only=True)``. The last line is
the ratio of the full safe loader (all checks + load) to the bare load.
"""
import argparse
import hashlib
import os
import os.path as osp
import shutil
import tempfile
import time

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

import mmseg_contrast  # noqa: F401
from mmseg_contrast.checkpoint.bounds import check_pickle_bounds
from mmseg_contrast.checkpoint.integrity import (
    inspect_checkpoint,
    verify_checkpoint_file,
)
from mmseg_contrast.checkpoint.safety import load_checkpoint_file

SCALARS = ('loss', 'decode.loss_ce', 'decode.acc_seg', 'lr', 'time',
           'data_time')


def _message_hub(iters):
    rng = np.random.default_rng(0)
    scalars = {}
    for key in SCALARS:
        buf = HistoryBuffer()
        for v in rng.random(iters):
            buf.update(float(v))
        scalars[f'train/{key}'] = buf
    return {'log_scalars': scalars, 'runtime_info': {'iter': iters}}


def _checkpoint(mib, log_iters):
    sd, left, i = {}, mib << 18, 0  # float32 elements
    while left > 0:
        n = min(left, 2048 * 1024 * 3)  # up to 24 MiB per tensor
        sd[f'layer{i}.weight'] = torch.randn(n // 9, 9)
        sd[f'layer{i}.bias'] = torch.zeros(64)
        left -= n
        i += 1
    return {'state_dict': sd, 'meta': {'iter': log_iters},
            'message_hub': _message_hub(log_iters)}


def _bounds(path, layout):
    with open(path, 'rb') as f:
        check_pickle_bounds(f, path, layout)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--mb', type=int, default=200)
    p.add_argument('--repeat', type=int, default=5)
    p.add_argument('--log-iters', type=int, default=10000)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp()
    try:
        plain = osp.join(tmp, 'iter_1000.pth')
        torch.save(_checkpoint(args.mb, args.log_iters), plain)
        with open(plain, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()  # warms the cache
        hashed = osp.join(tmp, f'model-{digest[:8]}.pth')
        shutil.copy(plain, hashed)
        size = os.path.getsize(plain) / 2**20
        layout = inspect_checkpoint(plain)
        loaders = [
            ('torch.load(weights_only=True)',
             lambda: torch.load(plain, map_location='cpu', weights_only=True)),
            ('CRC check alone', lambda: verify_checkpoint_file(plain)),
            ('resource bounds alone (pickle walk)',
             lambda: _bounds(plain, layout)),
            ('load_checkpoint_file (CRC + bounds + load)',
             lambda: load_checkpoint_file(plain, 'cpu')),
            ('load_checkpoint_file, hashed name (+ sha256)',
             lambda: load_checkpoint_file(hashed, 'cpu')),
        ]
        times = [[] for _ in loaders]
        for _ in range(args.repeat):
            for (_, fn), ts in zip(loaders, times):
                t = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t)
        best = [min(ts) for ts in times]
        base = best[0]
        print(f'checkpoint: {size:.0f} MiB ({args.log_iters} logged '
              f'iterations), best of {args.repeat} interleaved runs, page '
              f'cache warm, 1 thread')
        for (name, _), t in zip(loaders, best):
            print(f'{name:48s} {t * 1000:8.1f} ms  {t / base:5.2f}x  '
                  f'({size / t:6.0f} MiB/s)')
        print(f'safe loader / bare torch.load: {best[3] / base:.2f}x '
              f'(bounds alone {best[2] / base:.3f}x)')
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    main()
