"""Benchmark: bytes each rank sends to the memory bank's all-gather per
iteration, before (the whole key map + labels, the previous enqueue) and
after (only the rows it writes: segment means and sampled pixels with their
classes), measured in a real multi-process gloo run on CPU.

Shapes come from a memory-bank config (default: the HRNet-W48 Cityscapes
one): ``batch_size`` images per rank, ``proj_channels`` keys at 1/4 of the
crop (HRNetV2's output stride), its ``num_classes``, ``memory_size`` and
``pixel_per_image``. Each rank gets its own random unit keys and a label map
with every class present in every image (the most rows the new enqueue can
send: one segment and ``pixel_per_image`` pixels per (image, class)) plus an
ignore band.

Measured: ``mmengine.dist.all_gather`` is wrapped in the bank's module, and
the bytes of every tensor a rank passes to it are added up (a rank's
contribution; a ring all-gather forwards it to the other ranks). "before"
runs the previous scheme (gather keys and labels, then enqueue the
gathered batch); "after" runs ``PixelMemoryBank.enqueue``. After the run
every rank's bank buffers are compared (they must be identical).

    python tools/analysis/benchmark_bank_traffic.py            # 2 ranks
    python tools/analysis/benchmark_bank_traffic.py --ranks 4 --iters 3

Target (issue 11): <= 1 MiB per rank and iteration, identical banks.
"""
import argparse
import os
import os.path as osp
import tempfile

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
import torch.nn.functional as F

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CFG = osp.join(REPO, 'configs', 'pixel_contrast',
                       'fcn_hr48_contrast-mem_4xb2-40k_cityscapes-512x1024.py')
MIB = 2.**20


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=DEFAULT_CFG)
    p.add_argument('--ranks', type=int, default=2)
    p.add_argument('--iters', type=int, default=2)
    p.add_argument('--output-stride', type=int, default=4)
    return p.parse_args(argv)


def shapes_from_config(path, output_stride):
    from mmengine.config import Config

    import mmseg_contrast  # noqa: F401
    cfg = Config.fromfile(path)
    head = cfg.model.decode_head
    bank = head.memory_bank
    crop = cfg.crop_size
    return dict(
        batch=cfg.train_dataloader.batch_size, dim=head.proj_channels,
        size=(crop[0] // output_stride, crop[1] // output_stride),
        num_classes=head.num_classes, memory_size=bank.memory_size,
        pixel_per_image=bank.pixel_per_image)


def make_batch(shapes, rank, step):
    B, D, (h, w), C = (shapes['batch'], shapes['dim'], shapes['size'],
                       shapes['num_classes'])
    g = torch.Generator().manual_seed(1000 * rank + step)
    keys = F.normalize(torch.randn(B, D, h, w, generator=g), dim=1)
    # vertical bands, one per class in a random order, and an ignore band
    cols = torch.arange(w) * (C + 1) // w  # 0..C
    labels = torch.empty(B, h, w, dtype=torch.long)
    for b in range(B):
        perm = torch.cat([torch.randperm(C, generator=g), torch.tensor([255])])
        labels[b] = perm[cols][None].expand(h, w)
    return keys, labels


def _worker(rank, world, init_file, shapes, iters, out_dir):
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo', init_method=f'file://{init_file}',
                                  rank=rank, world_size=world)
    try:
        from mmengine.dist import all_gather

        import mmseg_contrast  # noqa: F401
        from mmseg_contrast.models.utils import memory_bank as mb
        sent = {'now': 0}

        def counting_all_gather(tensor, *args, **kwargs):
            sent['now'] += tensor.numel() * tensor.element_size()
            return all_gather(tensor, *args, **kwargs)

        mb.all_gather = counting_all_gather

        def new_bank():
            return mb.PixelMemoryBank(
                num_classes=shapes['num_classes'], feat_dim=shapes['dim'],
                memory_size=shapes['memory_size'],
                pixel_per_image=shapes['pixel_per_image'])

        result = {}
        # before: the previous enqueue gathered the key map and the labels,
        # then every rank enqueued the whole gathered batch
        bank = new_bank()
        bank.gather = False
        for step in range(iters):
            keys, labels = make_batch(shapes, rank, step)
            keys = torch.cat(counting_all_gather(keys.contiguous()))
            labels = torch.cat(counting_all_gather(labels.contiguous()))
            bank.enqueue(keys, labels)
        result['before'] = sent['now'] / iters
        # after: PixelMemoryBank.enqueue as it is
        sent['now'] = 0
        bank = new_bank()
        for step in range(iters):
            bank.enqueue(*make_batch(shapes, rank, step))
        result['after'] = sent['now'] / iters
        result['bank'] = {n: getattr(bank, n).clone()
                          for n in bank.buffer_names()}
        torch.save(result, osp.join(out_dir, f'rank{rank}.pth'))
    finally:
        torch_dist.destroy_process_group()


def main(argv=None):
    args = parse_args(argv)
    shapes = shapes_from_config(args.config, args.output_stride)
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, nprocs=args.ranks, join=True,
                 args=(args.ranks, osp.join(tmp, 'init'), shapes, args.iters,
                       tmp))
        res = [torch.load(osp.join(tmp, f'rank{r}.pth'), weights_only=True)
               for r in range(args.ranks)]
    same = all(torch.equal(res[0]['bank'][k], r['bank'][k])
               for r in res[1:] for k in res[0]['bank'])
    before = max(r['before'] for r in res)
    after = max(r['after'] for r in res)
    B, D, (h, w) = shapes['batch'], shapes['dim'], shapes['size']
    print(f'config: {osp.relpath(args.config, REPO)}')
    print(f'{args.ranks} ranks x {B} images, keys {D} x {h} x {w}, '
          f'{shapes["num_classes"]} classes (all present in every image), '
          f'{shapes["pixel_per_image"]} pixels per (image, class), '
          f'{args.iters} iterations')
    print(f'bytes sent per rank per iteration: before {before:,.0f} '
          f'({before / MIB:.2f} MiB), after {after:,.0f} '
          f'({after / MIB:.3f} MiB): {before / after:.0f}x less '
          f'(target <= 1 MiB: {"yes" if after <= MIB else "NO"})')
    print(f'banks identical on all ranks: {same}')
    return dict(before=before, after=after, identical=same)


if __name__ == '__main__':
    main()
