"""Cost of the crash-safe checkpoint write against a bare ``torch.save``.

    python tools/analysis/benchmark_checkpoint_save.py [--mb 200] [--repeat 5]

Writes a checkpoint of ``--mb`` MiB of float32 tensors into a temporary
folder with ``torch.save(obj, path)`` and with
:func:`mmseg_contrast.checkpoint.saving.atomic_torch_save` (temporary file
in the same folder, flush + fsync, rename, fsync of the folder: what every
checkpoint the Runner writes goes through), ``--repeat`` times, interleaved
so that machine load hits both alike, and prints the best time of each and
the ratio. The fsync makes the write durable: its cost depends on the disk
(on a page-cache-only write, ``torch.save`` returns before the data is on
disk at all).
"""
import argparse
import os.path as osp
import shutil
import tempfile
import time

import torch

from mmseg_contrast.checkpoint.saving import atomic_torch_save


def _state_dict(mib):
    n = mib * (1 << 20) // 4
    sizes, out, i = [], {}, 0
    while n > 0:
        size = min(n, 2_359_296)  # a 3x3x512x512 conv
        sizes.append(size)
        n -= size
    for size in sizes:
        out[f'layer{i}.weight'] = torch.randn(size)
        i += 1
    return {'state_dict': out, 'meta': {'iter': 1}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--mb', type=int, default=200)
    p.add_argument('--repeat', type=int, default=5)
    args = p.parse_args(argv)
    obj = _state_dict(args.mb)
    folder = tempfile.mkdtemp(prefix='ckpt_save_bench_')
    path = osp.join(folder, 'iter_1.pth')
    best = {'torch.save': float('inf'), 'atomic_torch_save': float('inf')}
    try:
        for _ in range(args.repeat):
            for name, save in (('torch.save', torch.save),
                               ('atomic_torch_save', atomic_torch_save)):
                t0 = time.perf_counter()
                save(obj, path)
                best[name] = min(best[name], time.perf_counter() - t0)
    finally:
        shutil.rmtree(folder)
    base = best['torch.save']
    for name, secs in best.items():
        print(f'{name:18s} {secs:7.3f} s  {secs / base:5.2f}x')
    print(f'crash-safe write / bare torch.save: '
          f'{best["atomic_torch_save"] / base:.2f}x ({args.mb} MiB)')
    return best


if __name__ == '__main__':
    main()
