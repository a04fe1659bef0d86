"""One-command CPU demo: a baseline and the method, side by side.

    python tools/run_demo.py                      # CE only vs + pixel contrast
    python tools/run_demo.py --method reco_semi   # mean teacher vs + ReCo
    python tools/run_demo.py --method densecl     # random init vs DenseCL
    python tools/run_demo.py --config CFG [--baseline-config CFG0]

Both configs are trained with ``tools/train.py`` on the same embedded real
data (the offline Fashion-canvas set, prepared first if missing), seed and
iterations, evaluated with ``tools/test.py`` on the held-out test split, and
printed side by side with their difference; ``<work-dir>/summary.json``
(``{"baseline": {"config", "mIoU", "seconds"}, "method": {...}, "diff"}``)
and a t-SNE figure of both models' pixel embeddings
(``<work-dir>/tsne.png``) are written. Each pair is one comparison of the
accuracy suite at its seed-0 protocol; the demo prints the suite's
multi-seed result next to its own single seed. ``--method densecl`` runs
``tools/run_densecl_demo.py`` (pre-training, conversion, fine-tuning from
DenseCL and from random init on the AAL slices) and summarises it the same
way. ``--config`` alone trains and tests one config.

The library is :mod:`mmseg_contrast.tooling.demo`.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

from mmengine.config import DictAction

from mmseg_contrast.tooling import demo
from mmseg_contrast.tooling.data import prepare_all

METHODS = sorted(demo.PAIRS) + ['densecl']


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--method', choices=METHODS, default='contrast',
                   help='which pair to run (default: contrast)')
    p.add_argument('--config', help='run this config instead (with '
                   '--baseline-config: this pair)')
    p.add_argument('--baseline-config', help='the baseline of --config')
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--seed', type=int, default=0, help='random seed')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   metavar='KEY=VALUE',
                   help='passed to every train.py and test.py run')
    p.add_argument('--no-figure', action='store_true',
                   help='skip the t-SNE figure')
    p.add_argument('--skip-prepare', action='store_true',
                   help='do not call the offline data preparers')
    p.add_argument('--quiet', action='store_true',
                   help='print progress lines only, not the train/test logs')
    return p.parse_args(argv)


def _prepare():
    cwd = os.getcwd()
    os.chdir(demo.REPO)  # data/ lives in the repo root
    try:
        t0 = time.perf_counter()
        prepare_all()
        return time.perf_counter() - t0
    finally:
        os.chdir(cwd)


def _options(cfg_options):
    """``KEY=VALUE`` strings as ``--cfg-options`` parses them."""
    return {k: DictAction._parse_iterable(v)
            for k, v in (o.split('=', 1) for o in cfg_options)}


def _figure(summary, work_dir, cfg_options):
    from mmseg_contrast.tooling.figures.tsne import tsne_figure
    out = osp.join(work_dir, 'tsne.png')
    runs = []
    for key in ('baseline', 'method'):
        run_dir = osp.join(work_dir, key)
        dump = osp.join(run_dir, osp.basename(summary[key]['config']))
        runs.append((dump, summary[key]['checkpoint']))
    tsne_figure(runs, out, [summary['baseline']['name'],
                            summary['method']['name']], split='test',
                embedding='feature', max_images=100,
                cfg_options=_options(cfg_options))
    return out


def run_pair(pair, args, work_dir):
    runs = [('baseline', pair.baseline, pair.baseline_name),
            ('method', pair.method, pair.method_name)]
    summary = dict(title=pair.title, seed=args.seed,
                   evaluated_on=pair.evaluated_on,
                   cfg_options=args.cfg_options)
    for i, (key, config, name) in enumerate(runs):
        label = f'{i + 1}/2 {name}'
        progress = demo.Progress(label, len(runs) - 1 - i)
        result = demo.train_and_test(config, osp.join(work_dir, key),
                                     args.seed, args.cfg_options,
                                     args.quiet, progress)
        summary[key] = dict(result, name=name)
        print(f'[demo] {label}: mIoU {result["mIoU"]:.2f} in '
              f'{result["seconds"]:.0f} s', flush=True)
    summary['diff'] = round(summary['method']['mIoU'] -
                            summary['baseline']['mIoU'], 2)
    summary['suite'] = demo.suite_summary(pair.comparison)
    return summary


def run_densecl(args, work_dir):
    wd = osp.join(work_dir, 'densecl')
    cmd = [sys.executable, 'tools/run_densecl_demo.py', '--work-dir', wd,
           '--seed', str(args.seed)]
    print('[demo] ' + ' '.join(cmd), flush=True)
    rc, _, _ = demo.run_logged(cmd, osp.join(work_dir, 'densecl.log'),
                               False)
    if rc != 0:
        raise SystemExit(f'demo: the DenseCL demo failed (exit {rc})')
    with open(osp.join(demo.REPO, wd, 'results.json')) as f:
        res = json.load(f)
    pair = demo.DENSECL_PAIR
    summary = dict(
        title=pair.title, seed=args.seed, evaluated_on=pair.evaluated_on,
        baseline=dict(config=pair.baseline, name=pair.baseline_name,
                      mIoU=res['random']['mIoU'],
                      seconds=round(res['random']['seconds'], 1)),
        method=dict(config=pair.method, name=pair.method_name,
                    mIoU=res['densecl']['mIoU'],
                    seconds=round(res['densecl']['seconds'] +
                                  res.get('pretrain_s', 0.0), 1)))
    summary['diff'] = round(summary['method']['mIoU'] -
                            summary['baseline']['mIoU'], 2)
    summary['suite'] = demo.suite_summary(pair.comparison)
    return summary


def main(argv=None):
    args = parse_args(argv)
    work_dir = osp.join(demo.REPO, args.work_dir)  # no-op if absolute
    os.makedirs(work_dir, exist_ok=True)
    t_start = time.perf_counter()
    if not args.skip_prepare:
        print(f'[demo] offline data ready in {_prepare():.1f} s', flush=True)
    if args.config and not args.baseline_config:
        result = demo.train_and_test(
            args.config, osp.join(work_dir, 'run'), args.seed,
            args.cfg_options, args.quiet,
            demo.Progress('1/1', 0))
        demo.write_summary(result, osp.join(work_dir, 'summary.json'))
        print(f'[demo] {args.config} (seed {args.seed}): mIoU '
              f'{result["mIoU"]:.2f} in {result["seconds"]:.0f} s')
        return result
    if args.config:
        pair = demo.DemoPair(f'{args.baseline_config} vs {args.config}',
                             args.baseline_config, args.config, '')
        summary = run_pair(pair, args, work_dir)
    elif args.method == 'densecl':
        summary = run_densecl(args, work_dir)
    else:
        summary = run_pair(demo.PAIRS[args.method], args, work_dir)
    if not args.no_figure and args.method != 'densecl':
        summary['figure'] = _figure(summary, work_dir, args.cfg_options)
    summary['total_seconds'] = round(time.perf_counter() - t_start, 1)
    demo.write_summary(summary, osp.join(work_dir, 'summary.json'))
    for line in demo.summary_lines(summary):
        print(line)
    print(f'[demo] total {summary["total_seconds"]:.0f} s; '
          f'{osp.join(args.work_dir, "summary.json")}'
          + (f', {summary["figure"]}' if 'figure' in summary else ''))
    return summary


if __name__ == '__main__':
    main()
