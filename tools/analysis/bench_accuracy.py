"""The embedded accuracy suite (``make bench-accuracy``).

Four paired, multi-seed comparisons on the Fashion-canvas set (protocol:
``configs/bench/README.md``), each run through ``compare_runs.py``'s engine
(``tools/train.py`` + ``tools/test.py`` per (arm, seed), finished runs
reused, interrupted ones resumed). Arms shared by two comparisons (the
supervised-only and the mean-teacher arms) are trained once. The DenseCL
comparison first pre-trains one backbone per seed (mmpretrain DenseCL) and
converts it with ``tools/model_converters/densecl2mmseg.py``.

Writes ``docs/results/accuracy_suite.json``::

    {"comparisons": [{"name", "baseline", "method", "dataset", "seeds",
                      "baseline_miou": [...], "method_miou": [...],
                      "diff_mean", "ci95", ...}], "protocol": {...}}

(the summary of each comparison is recomputed from its per-seed values) and
``docs/results/accuracy_suite.png``. Comparisons not run this time keep
their previous entry, so the suite can be completed across sittings::

    python tools/analysis/bench_accuracy.py                     # all
    python tools/analysis/bench_accuracy.py --only semi_vs_sup  # one
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)

from _compare_lib import ArmSpec, CompareError, read_json, write_json  # noqa
from compare_runs import run_comparison  # noqa: E402

B = 'configs/bench/'
DATASET = 'fashion_canvas (20 labelled / 1980 unlabelled train, 500 test)'
ARMS = dict(
    sup=B + 'deeplabv3_mnv2_sup-only_20lab-fashion_cpu.py',
    contrast=B + 'deeplabv3_mnv2_contrast_20lab-fashion_cpu.py',
    semi=B + 'deeplabv3_mnv2_meanteacher-classmix_20lab-fashion_cpu.py',
    semi_reco=B + 'deeplabv3_mnv2_reco-classmix_20lab-fashion_cpu.py',
    random_init=B + 'deeplabv3_mnv2_random-init_20lab-fashion_cpu.py',
    densecl=B + 'deeplabv3_mnv2_densecl-pre_20lab-fashion_cpu.py',
)
DENSECL_PRETRAIN = B + 'densecl_mnv2_1xb32-coslr-300it_fashion-64x64.py'
DENSECL_MMSEG = 'densecl_mnv2_mmseg.pth'
#: name -> (baseline arm, method arm), in the order they run
COMPARISONS = dict(
    contrast_vs_ce=('sup', 'contrast'),
    semi_vs_sup=('sup', 'semi'),
    semi_reco_vs_semi=('semi', 'semi_reco'),
    densecl_vs_random=('random_init', 'densecl'),
)


def _say(msg):
    print(f'[bench-accuracy {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def densecl_pretrain(work_root, seed, max_iters=None):
    """Pre-train (or reuse) seed ``seed``'s DenseCL backbone; return the
    converted mmseg checkpoint."""
    wd = osp.join(work_root, 'densecl_pretrain', f'seed_{seed}')
    out = osp.join(wd, DENSECL_MMSEG)
    if osp.isfile(out):
        _say(f'DenseCL pre-training seed {seed}: reused {out}')
        return out
    os.makedirs(wd, exist_ok=True)
    py = sys.executable
    cmd = [py, osp.join(REPO, 'tools/train.py'), DENSECL_PRETRAIN,
           '--work-dir', wd, '--cfg-options', f'randomness.seed={seed}']
    if osp.isfile(osp.join(wd, 'last_checkpoint')):
        cmd.append('--resume')
    if max_iters:
        cmd += [f'train_cfg.max_iters={max_iters}',
                f'default_hooks.checkpoint.interval={max_iters}']
    _say(f'DenseCL pre-training seed {seed} -> {wd}')
    t0 = time.perf_counter()
    with open(osp.join(wd, 'pretrain.log'), 'a') as log:
        rc = subprocess.call(cmd, cwd=REPO, stdout=log, stderr=log)
    if rc:
        raise CompareError(f'DenseCL pre-training seed {seed} failed (rc '
                           f'{rc}); see {osp.join(wd, "pretrain.log")}')
    with open(osp.join(wd, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    conv = [py, osp.join(REPO, 'tools/model_converters/densecl2mmseg.py'),
            ckpt, out + '.tmp', '--config', ARMS['densecl']]
    with open(osp.join(wd, 'convert.log'), 'w') as log:
        rc = subprocess.call(conv, cwd=REPO, stdout=log, stderr=log)
    if rc:
        raise CompareError(f'DenseCL conversion seed {seed} failed; see '
                           f'{osp.join(wd, "convert.log")}')
    os.replace(out + '.tmp', out)
    _say(f'DenseCL pre-training seed {seed}: done in '
         f'{time.perf_counter() - t0:.0f} s')
    return out


def suite_entry(name, report):
    """The suite's entry for one comparison report (per-seed values
    first; the summary recomputed from them)."""
    from mmseg_contrast.utils.paired_stats import arm_stats, paired_stats
    comp = report['comparisons'][0]
    base, meth = comp['baseline_miou'], comp['method_miou']
    ps = paired_stats(base, meth)
    return dict(
        name=name, baseline=comp['baseline'], method=comp['method'],
        dataset=DATASET, seeds=comp['seeds'], baseline_miou=base,
        method_miou=meth, diff_mean=ps['diff_mean'], ci95=ps['ci95'],
        per_seed_diff=ps['per_seed_diff'],
        baseline_mean=arm_stats(base)['mean'],
        baseline_std=arm_stats(base)['std'],
        method_mean=arm_stats(meth)['mean'],
        method_std=arm_stats(meth)['std'],
        baseline_config=comp['baseline_config'],
        method_config=comp['method_config'],
        max_iters=report['protocol']['max_iters'],
        wall_s={r['arm']: r.get('train_s') for r in report['runs']
                if r['seed'] == comp['seeds'][0]})


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--only', nargs='+', choices=list(COMPARISONS),
                   help='run only these comparisons')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--work-dir', default='work_dirs/bench_accuracy')
    p.add_argument('--max-iters', type=int,
                   help='override every arm\'s schedule (e.g. longer on a '
                   'GPU); the suite\'s protocol is the configs\' 400')
    p.add_argument('--densecl-iters', type=int,
                   help='override the DenseCL pre-training length')
    p.add_argument('--out', default='docs/results/accuracy_suite.json')
    p.add_argument('--png', default='docs/results/accuracy_suite.png')
    p.add_argument('--launcher', default='none',
                   choices=['none', 'pytorch', 'slurm'])
    p.add_argument('--nproc', type=int, default=1)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(REPO)
    names = args.only or list(COMPARISONS)
    work_root = osp.abspath(args.work_dir)
    suite = read_json(args.out) or {}
    entries = {c['name']: c for c in suite.get('comparisons', [])}
    t0 = time.perf_counter()
    try:
        for i, name in enumerate(names, 1):
            base, meth = COMPARISONS[name]
            _say(f'comparison {i}/{len(names)}: {name} ({meth} vs {base})')
            opts = None
            if name == 'densecl_vs_random':
                for s in args.seeds:
                    densecl_pretrain(work_root, s, args.densecl_iters)
                opts = [f'model.backbone.init_cfg.checkpoint={work_root}/'
                        f'densecl_pretrain/seed_{{seed}}/{DENSECL_MMSEG}']
            report = run_comparison(
                ArmSpec(base, ARMS[base]), [ArmSpec(meth, ARMS[meth], opts)],
                args.seeds, work_root, max_iters=args.max_iters,
                launcher=args.launcher, nproc=args.nproc, dataset=DATASET,
                out_json=osp.join(work_root, f'{name}.json'),
                out_png=osp.join(work_root, f'{name}.png'), log=_say)
            entries[name] = suite_entry(name, report)
            _write(args, entries, suite)
    except CompareError as e:
        _say(f'error: {e}')
        return 1
    _say(f'done in {time.perf_counter() - t0:.0f} s: {args.out}')
    for c in entries.values():
        _say(f'{c["name"]}: {c["method_mean"]:.2f} vs {c["baseline_mean"]:.2f}'
             f' mIoU, diff {c["diff_mean"]:+.2f} [{c["ci95"][0]:+.2f}, '
             f'{c["ci95"][1]:+.2f}]')
    return 0


def _write(args, entries, suite):
    order = [n for n in COMPARISONS if n in entries]
    suite = dict(
        suite, comparisons=[entries[n] for n in order],
        protocol=dict(
            doc='configs/bench/README.md', metric='mIoU (test split)',
            seeds=args.seeds, dataset=DATASET,
            densecl_pretrain=DENSECL_PRETRAIN, arms=ARMS))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_json(args.out, suite)
    from _suite_figure import plot_suite
    plot_suite(suite, args.png)


if __name__ == '__main__':
    sys.exit(main())
