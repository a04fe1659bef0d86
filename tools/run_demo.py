"""One-command CPU demo: prepare data, train, test, print mIoU and wall time.

    python tools/run_demo.py                       # baseline DeepLabV3-MNV2
    python tools/run_demo.py --algo baseline --seed 1 --work-dir work_dirs/x
    python tools/run_demo.py --config CFG --cfg-options train_cfg.max_iters=200

Runs ``tools/train.py CONFIG --work-dir WORK_DIR`` and then
``tools/test.py CONFIG CHECKPOINT`` (the checkpoint the training run wrote
last) in subprocesses, parses the test mIoU and prints a summary; the same
summary is saved to ``WORK_DIR/demo_result.json``. The offline data
(``make data``) are prepared first if missing (a no-op when cached).

To add an algorithm, add its config to ``ALGOS``.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: ``--algo`` name -> config (relative to the repo root).
ALGOS = {
    'baseline': 'configs/baseline/deeplabv3_mnv2_aal_cpu.py',
    'pixel_contrast':
    'configs/pixel_contrast/deeplabv3_mnv2_contrast_aal_cpu.py',
}

_METRIC_RE = re.compile(r'\b(aAcc|mIoU|mAcc):\s*([0-9]+(?:\.[0-9]+)?)')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Train + test a config on CPU and report mIoU.')
    p.add_argument('--algo', choices=sorted(ALGOS), default='baseline',
                   help='named demo config (default: baseline)')
    p.add_argument('--config', help='config file; overrides --algo')
    p.add_argument('--work-dir', help='default: work_dirs/demo/<config name>')
    p.add_argument('--seed', type=int, default=0, help='random seed')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   metavar='KEY=VALUE',
                   help='passed to both train.py and test.py')
    p.add_argument('--skip-prepare', action='store_true',
                   help='do not call the offline data preparers')
    p.add_argument('--quiet', action='store_true',
                   help='do not echo the train/test logs')
    return p.parse_args(argv)


def parse_metrics(text):
    """Last ``aAcc`` / ``mIoU`` / ``mAcc`` values logged in ``text``."""
    found = {}
    for name, value in _METRIC_RE.findall(text):
        found[name] = float(value)
    return found


def _run(cmd, log_path, quiet):
    """Run ``cmd`` from the repo root, tee its output to ``log_path``;
    return (returncode, output, seconds)."""
    t0 = time.perf_counter()
    lines = []
    with open(log_path, 'w') as log, subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
            env=dict(os.environ, PYTHONUNBUFFERED='1')) as proc:
        for line in proc.stdout:
            lines.append(line)
            log.write(line)
            if not quiet:
                sys.stdout.write(line)
        proc.wait()
    return proc.returncode, ''.join(lines), time.perf_counter() - t0


def _last_checkpoint(work_dir):
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise SystemExit(f'run_demo: training wrote no checkpoint '
                         f'({marker} missing)')
    with open(marker) as f:
        return f.read().strip()


def main(argv=None):
    args = parse_args(argv)
    config = args.config or ALGOS[args.algo]
    name = osp.splitext(osp.basename(config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'demo', name)
    abs_work_dir = osp.join(REPO_ROOT, work_dir)  # no-op if absolute
    os.makedirs(abs_work_dir, exist_ok=True)
    t_start = time.perf_counter()

    t_prep = 0.0
    if not args.skip_prepare:
        cwd = os.getcwd()
        os.chdir(REPO_ROOT)  # data/ lives in the repo root
        try:
            from mmseg_contrast.tooling import offline_data
            t0 = time.perf_counter()
            offline_data.prepare_all()
            t_prep = time.perf_counter() - t0
        finally:
            os.chdir(cwd)

    cfg_opts = [f'randomness.seed={args.seed}'] + list(args.cfg_options)
    py = sys.executable
    train_cmd = [py, 'tools/train.py', config, '--work-dir', abs_work_dir,
                 '--cfg-options'] + cfg_opts
    print('[run_demo] ' + ' '.join(train_cmd), flush=True)
    rc, _, t_train = _run(train_cmd, osp.join(abs_work_dir, 'train.log'),
                          args.quiet)
    if rc != 0:
        raise SystemExit(f'run_demo: training failed (exit {rc}); see '
                         f'{osp.join(abs_work_dir, "train.log")}')

    ckpt = _last_checkpoint(abs_work_dir)
    test_cmd = [py, 'tools/test.py', config, ckpt, '--work-dir',
                osp.join(abs_work_dir, 'test'), '--cfg-options'] + cfg_opts
    print('[run_demo] ' + ' '.join(test_cmd), flush=True)
    rc, out, t_test = _run(test_cmd, osp.join(abs_work_dir, 'test.log'),
                           args.quiet)
    if rc != 0:
        raise SystemExit(f'run_demo: testing failed (exit {rc}); see '
                         f'{osp.join(abs_work_dir, "test.log")}')
    metrics = parse_metrics(out)
    if 'mIoU' not in metrics:
        raise SystemExit('run_demo: no mIoU found in the test output; see '
                         f'{osp.join(abs_work_dir, "test.log")}')

    result = dict(
        config=config, seed=args.seed, cfg_options=args.cfg_options,
        checkpoint=ckpt, metrics=metrics, prepare_s=round(t_prep, 1),
        train_s=round(t_train, 1), test_s=round(t_test, 1),
        total_s=round(time.perf_counter() - t_start, 1))
    with open(osp.join(abs_work_dir, 'demo_result.json'), 'w') as f:
        json.dump(result, f, indent=1)
    print(f'[run_demo] config: {config} (seed {args.seed})')
    print(f'[run_demo] mIoU: {metrics["mIoU"]:.2f}  aAcc: '
          f'{metrics.get("aAcc", float("nan")):.2f}  mAcc: '
          f'{metrics.get("mAcc", float("nan")):.2f}')
    print(f'[run_demo] wall time: total {result["total_s"]:.1f} s '
          f'(prepare {t_prep:.1f} s, train {t_train:.1f} s, '
          f'test {t_test:.1f} s)')
    return result


if __name__ == '__main__':
    main()
