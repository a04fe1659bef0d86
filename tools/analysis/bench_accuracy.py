"""The embedded accuracy suite (``make bench-accuracy``).

Four paired, multi-seed comparisons on the Fashion-canvas set (protocol:
``configs/bench/README.md``), each run through ``compare_runs.py``'s engine
(``tools/train.py`` + ``tools/test.py`` per (arm, seed), finished runs
reused, interrupted ones resumed). Arms shared by two comparisons (the
supervised-only and the mean-teacher arms) are trained once. The DenseCL
comparison first pre-trains one backbone per seed (mmpretrain DenseCL) and
converts it with ``tools/model_converters/densecl2mmseg.py``. The suite is
:mod:`mmseg_contrast.tooling.accuracy_suite`, on top of
:mod:`mmseg_contrast.tooling.compare`.

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
import sys
import time

from mmseg_contrast.tooling.accuracy_suite import (
    COMPARISONS,
    ci_text,
    markdown_table,
    run_suite,
    say,
)
from mmseg_contrast.tooling.compare import REPO, CompareError, read_json


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
    p.add_argument('--markdown', action='store_true',
                   help='only print the results table of --out (markdown)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(REPO)
    if args.markdown:
        print(markdown_table(read_json(args.out) or {}))
        return 0
    t0 = time.perf_counter()
    try:
        entries = run_suite(
            args.only or list(COMPARISONS), args.seeds, args.work_dir,
            args.out, args.png, max_iters=args.max_iters,
            densecl_max_iters=args.densecl_iters, launcher=args.launcher,
            nproc=args.nproc)
    except CompareError as e:
        say(f'error: {e}')
        return 1
    say(f'done in {time.perf_counter() - t0:.0f} s: {args.out}')
    for c in entries.values():
        say(f'{c["name"]}: {c["method_mean"]:.2f} vs {c["baseline_mean"]:.2f}'
            f' mIoU, diff {c["diff_mean"]:+.2f} {ci_text(c)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
