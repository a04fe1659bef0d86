"""Cost of the safe loader's integrity checks (CRC-32 of every record, and
sha256 when the name carries a hash) against a bare ``torch.load``.

    python tools/analysis/benchmark_checkpoint_load.py [--mb 200] [--repeat 3]

Writes a checkpoint of ``--mb`` MiB of float32 tensors (ResNet-like sizes)
into a temporary folder, reads it once to warm the page cache, then prints
the best-of-``--repeat`` wall time of each loader and its ratio to
``torch.load(weights_only=True)``.
"""
import argparse
import hashlib
import os
import os.path as osp
import shutil
import tempfile
import time

import torch

import mmseg_contrast  # noqa: F401
from mmseg_contrast.checkpoint.integrity import verify_checkpoint_file
from mmseg_contrast.checkpoint.safety import load_checkpoint_file


def _state_dict(mib):
    sd, left, i = {}, mib << 18, 0  # float32 elements
    while left > 0:
        n = min(left, 2048 * 1024 * 3)  # up to 24 MiB per tensor
        sd[f'layer{i}.weight'] = torch.randn(n // 9, 9)
        sd[f'layer{i}.bias'] = torch.zeros(64)
        left -= n
        i += 1
    return {'state_dict': sd, 'meta': {'iter': 1}}


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--mb', type=int, default=200)
    p.add_argument('--repeat', type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp()
    try:
        plain = osp.join(tmp, 'iter_1000.pth')
        torch.save(_state_dict(args.mb), plain)
        with open(plain, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()  # warms the cache
        hashed = osp.join(tmp, f'model-{digest[:8]}.pth')
        shutil.copy(plain, hashed)
        size = os.path.getsize(plain) / 2**20
        base = _best(lambda: torch.load(plain, map_location='cpu',
                                        weights_only=True), args.repeat)
        rows = [
            ('torch.load(weights_only=True)', base),
            ('CRC check alone', _best(lambda: verify_checkpoint_file(plain),
                                      args.repeat)),
            ('load_checkpoint_file (CRC + load)',
             _best(lambda: load_checkpoint_file(plain, 'cpu'), args.repeat)),
            ('load_checkpoint_file, hashed name (+ sha256)',
             _best(lambda: load_checkpoint_file(hashed, 'cpu'), args.repeat)),
        ]
        print(f'checkpoint: {size:.0f} MiB, best of {args.repeat}, page '
              f'cache warm, 1 thread')
        for name, t in rows:
            print(f'{name:48s} {t * 1000:8.1f} ms  {t / base:5.2f}x  '
                  f'({size / t:6.0f} MiB/s)')
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    main()
