"""Train-step overhead of the pixel-contrast head over the plain head.

Builds the demo model twice from its configs -- the CE-only baseline
(``ASPPHead``) and the contrast demo (``ContrastASPPHead``: projection head +
``PixelContrastLoss``, term active) -- with identical weights, and times
full training steps (data preprocessing, forward, loss, backward, SGD step)
on the same batch, alternating the models in rounds so that load changes
on a shared machine hit both alike. Prints the median process-CPU and wall
times per step and the overhead ratios (target: <= 10 %); with
``OMP_NUM_THREADS=1`` the CPU time is the robust number on a busy machine.

    OMP_NUM_THREADS=1 python tools/analysis/benchmark_contrast_head_overhead.py
    python tools/analysis/benchmark_contrast_head_overhead.py --memory-bank

The batch is one real training batch of the demo data set (``make data``);
``--synthetic`` uses random images with blob labels instead.
"""
import argparse
import copy
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmseg_contrast  # noqa: F401  (compat layer + registration)
from mmseg_contrast.models.decode_heads import PixelContrastMixin

BASELINE = 'configs/baseline/deeplabv3_mnv2_aal_cpu.py'
CONTRAST = 'configs/pixel_contrast/deeplabv3_mnv2_contrast_aal_cpu.py'


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--baseline', default=BASELINE)
    p.add_argument('--contrast', default=CONTRAST)
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--steps', type=int, default=3,
                   help='timed steps per model per round')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--memory-bank', action='store_true',
                   help='also time the head in memory-bank mode (enqueue '
                   'included)')
    p.add_argument('--synthetic', action='store_true')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args()


def _build(cfg):
    from mmseg.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('pretrained', None)
    model_cfg.backbone.init_cfg = None  # no checkpoint I/O; timing only
    model = MODELS.build(model_cfg)  # PyTorch default init: timing only
    return model.train()


def _real_batch(cfg):
    from mmengine.runner import Runner
    dl_cfg = copy.deepcopy(cfg.train_dataloader)
    dl_cfg.num_workers = 0
    dl_cfg.persistent_workers = False
    loader = Runner.build_dataloader(dl_cfg, seed=0)
    return next(iter(loader))


def _synthetic_batch(cfg, num_classes):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    bs = cfg.train_dataloader.batch_size
    h, w = cfg.crop_size
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(bs):
        img = (torch.rand(3, h, w, generator=g) * 255).to(torch.uint8)
        coarse = torch.randint(0, num_classes, (1, 1, h // 20, w // 20),
                               generator=g)
        lab = torch.nn.functional.interpolate(
            coarse.float(), size=(h, w), mode='nearest')[0].long()
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=lab)
        ds.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        inputs.append(img)
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def _step(model, optim, data):
    optim.zero_grad(set_to_none=True)
    batch = model.data_preprocessor(data, True)
    losses = model(**batch, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    optim.step()
    for m in model.modules():
        if isinstance(m, PixelContrastMixin) and m.memory_bank is not None:
            m.memory_bank.enqueue(*m.pop_pending_keys())


def _time(model, optim, data, n):
    """[(wall s, process CPU s)] per step. With one torch thread the CPU
    time is what the step costs, unaffected by other jobs on the machine."""
    out = []
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        _step(model, optim, data)
        out.append((time.perf_counter() - w0, time.process_time() - c0))
    return out


def main():
    args = parse_args()
    init_default_scope('mmseg')
    torch.manual_seed(args.seed)
    cfg_b = Config.fromfile(args.baseline)
    cfg_c = Config.fromfile(args.contrast)
    models = {'plain': _build(cfg_b), 'contrast': _build(cfg_c)}
    if args.memory_bank:
        cfg_m = copy.deepcopy(cfg_c)
        # the reference memory recipe (H_48_D_4_MEM.json): one view per
        # (image, class) row, 5000 slots, 10 pixels per image
        cfg_m.model.decode_head.contrast_loss.max_views = 1
        cfg_m.model.decode_head.memory_bank = dict(
            type='PixelMemoryBank', memory_size=5000, pixel_per_image=10)
        models['contrast+bank'] = _build(cfg_m)
    state = models['plain'].state_dict()
    for name, m in models.items():
        if name != 'plain':
            m.load_state_dict(state, strict=False)  # identical shared part
            for h in m.modules():
                if isinstance(h, PixelContrastMixin):
                    h.contrast_weight_scale = 1.0  # term active
    data = (_synthetic_batch(cfg_b, cfg_b.num_classes)
            if args.synthetic else _real_batch(cfg_b))
    optims = {
        n: torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)
        for n, m in models.items()
    }
    for n, m in models.items():
        _time(m, optims[n], data, args.warmup)
    times = {n: [] for n in models}
    for _ in range(args.rounds):
        for n, m in models.items():
            times[n] += _time(m, optims[n], data, args.steps)
    head = [h for h in models['contrast'].modules()
            if isinstance(h, PixelContrastMixin)][0]
    print(f'batch: {len(data["inputs"])} x {tuple(data["inputs"][0].shape)}'
          f' ({"synthetic" if args.synthetic else "demo data"}), torch '
          f'threads {torch.get_num_threads()}, '
          f'{args.rounds} rounds x {args.steps} steps per model')
    print('contrast anchors in the last step: '
          f'{head.contrast_loss.last_num_rows} rows x '
          f'{head.contrast_loss.last_n_view} views')
    for col, what in ((1, 'process CPU'), (0, 'wall')):
        med = {n: statistics.median(x[col] for x in t)
               for n, t in times.items()}
        print(f'-- {what} time per train step (median over steps)')
        for n, t in med.items():
            print(f'{n:>14s}: {t * 1e3:9.1f} ms')
        for n in models:
            if n != 'plain':
                ratio = med[n] / med['plain']
                print(f'{n} / plain = {ratio:.3f} -> overhead '
                      f'{(ratio - 1) * 100:+.1f} % (target <= 10 %)')
    if torch.get_num_threads() != 1:
        print('note: with several torch threads the process CPU time also '
              'counts spinning threads; use OMP_NUM_THREADS=1')

if __name__ == '__main__':
    main()
