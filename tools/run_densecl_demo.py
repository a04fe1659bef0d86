"""One-command DenseCL demo on CPU.

1. DenseCL pre-training (mmpretrain's DenseCL, checked) of the demo's
   MobileNetV2 on the images of the AAL slice dataset (labels unused);
2. conversion of the checkpoint into an mmseg backbone checkpoint, checked
   against the fine-tuning config's backbone (zero missing keys);
3. fine-tuning DeepLabV3 (the CPU baseline) from the DenseCL backbone and from
   a random backbone, same iterations, seed and data;
4. evaluation (mIoU on the val slices) and a summary with the times.

Usage (from the repository root; data is prepared if missing)::

    python tools/run_densecl_demo.py
    python tools/run_densecl_demo.py --pretrain-iters 1000 \
        --finetune-iters 1000

Results go to ``<work-dir>/results.json`` (default work_dirs/densecl_demo).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

from mmseg_contrast.tooling.demo import DENSECL_PAIR

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

PRETRAIN_CFG = 'configs/densecl/densecl_mnv2_1xb16-coslr-1k_aal-128x128.py'
DENSECL_FT_CFG = DENSECL_PAIR.method
RANDOM_FT_CFG = DENSECL_PAIR.baseline


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/densecl_demo')
    p.add_argument('--pretrain-iters', type=int, default=200)
    p.add_argument('--pretrain-batch-size', type=int, default=16)
    p.add_argument(
        '--queue-len',
        type=int,
        default=16,
        help='DenseCL queue length (multiple of the batch size; 16 = one '
        'batch: P(own image in queue) 3.8 %% on the 82 slices, 64: 38 %%)')
    p.add_argument(
        '--pretrain-lr',
        type=float,
        default=None,
        help='pre-training lr (default: the config\'s base_lr per 256 '
        'images, scaled linearly to --pretrain-batch-size)')
    p.add_argument('--finetune-iters', type=int, default=200)
    p.add_argument('--threads', type=int, default=1, help='OMP threads')
    p.add_argument('--seed', type=int, default=0, help='fine-tuning seed')
    p.add_argument(
        '--skip-pretrain',
        action='store_true',
        help='reuse the pre-training checkpoint in the work dir')
    return p.parse_args(argv)


def pretrain_lr(cfg, args):
    """``--pretrain-lr``, else ``base_lr * batch / 256`` (linear scaling)."""
    if args.pretrain_lr is not None:
        return args.pretrain_lr
    return cfg.base_lr * args.pretrain_batch_size / 256


def _train(cfg, work_dir, threads, log_name):
    """Run tools/train.py on a dumped config in a subprocess; return secs."""
    os.makedirs(work_dir, exist_ok=True)
    cfg_path = osp.join(work_dir, 'config.py')
    cfg.dump(cfg_path)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(
        threads))
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), cfg_path, '--work-dir', work_dir
    ]
    log = osp.join(work_dir, log_name)
    t0 = time.time()
    with open(log, 'w') as f:
        ret = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    secs = time.time() - t0
    if ret.returncode != 0:
        with open(log) as f:
            tail = ''.join(f.readlines()[-30:])
        raise RuntimeError(f'training failed ({" ".join(cmd)}), see {log}:'
                           f'\n{tail}')
    return secs


def _last_metrics(work_dir):
    """The last validation record (mIoU, ...) that mmengine logged."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no scalars.json under {work_dir}')
    record = None
    with open(files[-1]) as f:
        for line in f:
            d = json.loads(line)
            if 'mIoU' in d:
                record = d
    if record is None:
        raise RuntimeError(f'no validation result in {files[-1]}')
    return record


def _finetune_cfg(path, iters, work_dir, seed=0):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.work_dir = work_dir
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    for s in cfg.param_scheduler:
        s.end = min(s.get('end', iters), iters)
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = max(1, min(50, iters // 10))
    cfg.randomness = dict(seed=seed)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    os.chdir(REPO)
    from mmengine.config import Config

    import mmseg_contrast  # noqa: F401
    from mmseg_contrast.converters.densecl import convert_densecl_checkpoint
    from mmseg_contrast.tooling import offline_data

    wd = args.work_dir
    os.makedirs(wd, exist_ok=True)
    results = dict(args=vars(args))
    t_all = time.time()
    offline_data.prepare_aal_slices()

    # 1. DenseCL pre-training ------------------------------------------------
    pre_wd = osp.join(wd, 'pretrain')
    n = args.pretrain_iters
    ckpt = osp.join(pre_wd, f'iter_{n}.pth')
    if not (args.skip_pretrain and osp.isfile(ckpt)):
        cfg = Config.fromfile(PRETRAIN_CFG)
        cfg.work_dir = pre_wd
        cfg.model.queue_len = args.queue_len
        cfg.train_dataloader.batch_size = args.pretrain_batch_size
        cfg.optim_wrapper.optimizer.lr = pretrain_lr(cfg, args)
        cfg.train_cfg.max_iters = n
        warm = max(1, n // 20)
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                 end=warm),
            dict(type='CosineAnnealingLR', T_max=n - warm, by_epoch=False,
                 begin=warm, end=n)
        ]
        cfg.default_hooks.checkpoint.interval = n
        cfg.default_hooks.logger.interval = max(1, min(25, n // 10))
        print(f'[1/4] DenseCL pre-training, {n} iterations ...', flush=True)
        results['pretrain_s'] = _train(cfg, pre_wd, args.threads,
                                       'pretrain.log')
        print(f'      done in {results["pretrain_s"]:.0f} s', flush=True)

    # 2. conversion ---------------------------------------------------------
    dst = osp.join(wd, 'densecl_mnv2_aal_mmseg.pth')
    print('[2/4] converting to an mmseg backbone checkpoint ...', flush=True)
    _, report = convert_densecl_checkpoint(
        ckpt,
        dst,
        backbone_cfg=DENSECL_FT_CFG,
        ignore_unexpected=['conv2.*'])
    print('      ' + report.summary().replace('\n', '\n      '), flush=True)
    results['conversion'] = report.to_meta()

    # 3./4. fine-tuning + evaluation ----------------------------------------
    runs = [('densecl', DENSECL_FT_CFG), ('random', RANDOM_FT_CFG)]
    for i, (name, path) in enumerate(runs):
        ft_wd = osp.join(wd, f'finetune_{name}')
        cfg = _finetune_cfg(path, args.finetune_iters, ft_wd, args.seed)
        if name == 'densecl':
            cfg.model.backbone.init_cfg.checkpoint = dst
        print(f'[{3 + i}/4] fine-tuning from the {name} backbone, '
              f'{args.finetune_iters} iterations + evaluation ...',
              flush=True)
        secs = _train(cfg, ft_wd, args.threads, 'finetune.log')
        m = _last_metrics(ft_wd)
        results[name] = dict(
            mIoU=m['mIoU'], aAcc=m.get('aAcc'), mAcc=m.get('mAcc'),
            seconds=secs)
        print(f'      mIoU {m["mIoU"]:.2f} (aAcc {m.get("aAcc")}) in '
              f'{secs:.0f} s', flush=True)

    results['total_s'] = time.time() - t_all
    with open(osp.join(wd, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print('\nDenseCL demo (AAL slices, DeepLabV3-MobileNetV2, CPU, '
          f'{args.finetune_iters} fine-tuning iterations):')
    for name, label in (('densecl', 'DenseCL-initialised'),
                        ('random', 'random-initialised ')):
        r = results[name]
        print(f'  {label} backbone: mIoU {r["mIoU"]:.2f} '
              f'(fine-tuning + evaluation {r["seconds"]:.0f} s)')
    if 'pretrain_s' in results:
        print(f'  DenseCL pre-training ({args.pretrain_iters} iterations): '
              f'{results["pretrain_s"]:.0f} s')
    print(f'  total {results["total_s"]:.0f} s; results in '
          f'{osp.join(wd, "results.json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
