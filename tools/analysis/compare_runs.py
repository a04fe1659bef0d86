"""Compare training recipes over several seeds: paired differences with a
95 % confidence interval.

    python tools/analysis/compare_runs.py BASE_CONFIG METHOD_CONFIG [...] \
        --seeds 0 1 2 --work-dir work_dirs/compare/NAME \
        [--names ce contrast] [--cfg-options K=V ...] \
        [--cfg-options-for contrast K=V ...] [--test-cfg-options K=V ...] \
        [--max-iters N] [--val-interval N] [--metric mIoU] \
        [--launcher none|pytorch|slurm] [--nproc N] [--amp]

Every (arm, seed) is trained with ``tools/train.py`` in
``WORK_DIR/<arm>/seed_<S>`` and its last checkpoint evaluated with
``tools/test.py``; finished runs are reused, interrupted ones resumed. The
report (per-seed metric, mean and std per arm, the paired difference to the
baseline per seed, its mean, std, t-interval and paired t-test p-value) is
written to ``WORK_DIR/comparison.json`` and plotted in
``WORK_DIR/comparison.png``. See docs/analysis.md.

The engine is :mod:`mmseg_contrast.tooling.compare` (its ``runner`` module
shows the call from Python).
"""
import argparse
import os.path as osp
import sys

from mmseg_contrast.tooling.compare import (
    ArmSpec,
    CompareError,
    print_summary,
    run_comparison,
)

__all__ = ['main']


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Train + test a baseline and method configs over seeds; '
        'report the paired difference with a t confidence interval.')
    p.add_argument('configs', nargs='+', metavar='CONFIG',
                   help='baseline config, then one or more method configs '
                   '(the same file may repeat with other --cfg-options-for)')
    p.add_argument('--names', nargs='+', help='arm names, one per config '
                   '(default: the config file names)')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--work-dir', help='default: work_dirs/compare/'
                   '<baseline>_vs_<method>...')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='K=V',
                   help='options for every arm (train and test)')
    p.add_argument('--cfg-options-for', nargs='+', action='append',
                   default=[], metavar=('NAME', 'K=V'),
                   help='options for the arm NAME only (train and test); '
                   'repeat the flag for several arms')
    p.add_argument('--test-cfg-options', nargs='+', default=[],
                   metavar='K=V', help='options for tools/test.py only, e.g. '
                   'a held-out test split')
    p.add_argument('--max-iters', type=int,
                   help='schedule length; rescales the iteration-based '
                   'schedule consistently (see docs/analysis.md)')
    p.add_argument('--val-interval', type=int)
    p.add_argument('--metric', default='mIoU', help='test metric to compare')
    p.add_argument('--confidence', type=float, default=0.95)
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                   default='none')
    p.add_argument('--nproc', '--gpus', type=int, default=1, dest='nproc',
                   help='processes (GPUs) per run with --launcher pytorch or '
                   'slurm')
    p.add_argument('--port', type=int, default=29500,
                   help='master port (--launcher pytorch)')
    p.add_argument('--srun-args', default='',
                   help='extra srun arguments (--launcher slurm), e.g. '
                   '"-p PARTITION --gres=gpu:4 --ntasks-per-node=4"')
    p.add_argument('--amp', action='store_true',
                   help='mixed precision training (tools/train.py --amp)')
    p.add_argument('--overwrite', action='store_true',
                   help='rerun runs whose saved settings differ (the old '
                   'run dirs are renamed, not deleted)')
    p.add_argument('--out-json', help='default: WORK_DIR/comparison.json')
    p.add_argument('--out-png', help='default: WORK_DIR/comparison.png')
    p.add_argument('--verbose', action='store_true',
                   help='echo the train/test logs')
    return p.parse_args(argv)


def _arms_from_args(args):
    if len(args.configs) < 2:
        raise CompareError('give a baseline config and at least one method '
                           'config')
    names = args.names or [osp.splitext(osp.basename(c))[0]
                           for c in args.configs]
    if len(names) != len(args.configs):
        raise CompareError(f'--names gives {len(names)} names for '
                           f'{len(args.configs)} configs')
    if len(set(names)) != len(names):
        raise CompareError(f'arm names repeat ({names}); give --names')
    per_arm = {n: [] for n in names}
    for entry in args.cfg_options_for:
        if entry[0] not in per_arm:
            raise CompareError(f'--cfg-options-for {entry[0]}: no arm of '
                               f'that name (arms: {names})')
        per_arm[entry[0]] += entry[1:]
    return [ArmSpec(n, c, per_arm[n]) for n, c in zip(names, args.configs)]


def main(argv=None):
    args = parse_args(argv)
    try:
        arms = _arms_from_args(args)
        work = args.work_dir or osp.join(
            'work_dirs', 'compare', '_vs_'.join(a.name for a in arms))
        report = run_comparison(
            arms[0], arms[1:], args.seeds, work, max_iters=args.max_iters,
            val_interval=args.val_interval, cfg_options=args.cfg_options,
            test_cfg_options=args.test_cfg_options, metric=args.metric,
            launcher=args.launcher, nproc=args.nproc, port=args.port,
            srun_args=args.srun_args, amp=args.amp, overwrite=args.overwrite,
            echo=args.verbose, confidence=args.confidence,
            out_json=args.out_json, out_png=args.out_png)
    except CompareError as e:
        print(f'compare_runs: error: {e}', file=sys.stderr, flush=True)
        return 1
    print_summary(report)
    return 0


if __name__ == '__main__':
    sys.exit(main())
