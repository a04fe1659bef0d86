"""GPU check of the plugin, one command (``make gpu-check``; docs/gpu.md).

On a CUDA machine without a package registry, from the repo root, with the
image's Python (the one that has torch) and ``gpu_wheels/`` from ``make
gpu-wheels``:

    python3 tools/analysis/gpu_check.py [--copy-to DIR]

1. creates a venv over the image's packages (``--system-site-packages``; if
   that Python is itself a venv, its site-packages are added by a ``.pth``
   file) and installs ``gpu_wheels/`` into it (``pip install --no-index
   --no-deps``), then this work tree (``--no-deps -e .``);
2. in that venv (``mmseg_contrast.tooling.gpu_check``): ``pytest -m cuda``;
   per model, fp32 and AMP fp16, iterations/s, peak memory and host syncs
   per training iteration against its plain counterpart;
   ``benchmark_contrast.py`` / ``benchmark_reco.py`` on CUDA;
3. prints the table and writes ``docs/results/gpu_check.json`` (and a copy
   in ``--copy-to``) after every step.

Without CUDA it exits with status 2 at once. About 5-8 minutes on one H100
(``--budget-s`` bounds the measuring phase). ``--no-venv`` runs step 2 in
the current interpreter (the plugin already installed there).
"""
import argparse
import os
import os.path as osp
import site
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NEEDS_GPU = ('gpu_check needs a CUDA GPU: {why}. Run it on a machine with '
             'an NVIDIA GPU and a CUDA build of torch (docs/gpu.md); '
             'nothing was measured.')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--wheels', default=osp.join(REPO, 'gpu_wheels'),
                   help='folder of make gpu-wheels')
    p.add_argument('--venv', default='/tmp/mmseg_contrast_gpu_venv')
    p.add_argument('--no-venv', action='store_true',
                   help='measure in this interpreter (nothing installed)')
    p.add_argument('--project-wheel', action='store_true',
                   help='install the wheel of gpu_wheels/ instead of -e .')
    p.add_argument('--out', default=osp.join(REPO, 'docs', 'results',
                                             'gpu_check.json'))
    p.add_argument('--copy-to', help='folder for a copy of the JSON')
    p.add_argument('--models', nargs='+', help='case names (default: all)')
    p.add_argument('--precisions', nargs='+', default=['fp32', 'fp16'],
                   choices=['fp32', 'fp16'])
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--sync-iters', type=int, default=2)
    p.add_argument('--budget-s', type=float, default=420)
    p.add_argument('--skip', nargs='+', default=[],
                   choices=['pytest', 'models', 'benchmarks'])
    p.add_argument('--in-venv', action='store_true', help=argparse.SUPPRESS)
    return p.parse_args(argv)


def cuda_problem():
    """None when torch sees a CUDA device, else why not."""
    try:
        import torch
    except ImportError as exc:
        return f'torch cannot be imported ({exc})'
    if not torch.cuda.is_available():
        return (f'torch {torch.__version__} sees no CUDA device '
                f'(torch.cuda.is_available() is False)')
    return None


def _run(cmd, **kw):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def setup_venv(args):
    """Create (or reuse) the venv, install the wheels and the project;
    return its python."""
    py = osp.join(args.venv, 'bin', 'python')
    wheels = sorted(f for f in os.listdir(args.wheels) if f.endswith('.whl'))
    project = [f for f in wheels if f.startswith('mmseg_contrast-')]
    deps = [osp.join(args.wheels, f) for f in wheels if f not in project]
    if not deps:
        raise SystemExit(f'no wheels in {args.wheels}: run `make gpu-wheels`'
                         f' on a machine with a package registry first')
    stamp = osp.join(args.venv, '.gpu_check-installed')
    want = '\n'.join(wheels + [f'project-wheel={args.project_wheel}', REPO])
    if osp.exists(stamp) and open(stamp).read() == want:
        return py
    pip = [py, '-m', 'pip']
    try:
        _run([sys.executable, '-m', 'venv', '--system-site-packages',
              args.venv])
    except subprocess.CalledProcessError:  # no ensurepip: the host's pip
        _run([sys.executable, '-m', 'venv', '--system-site-packages',
              '--without-pip', '--clear', args.venv])
        pip = [sys.executable, '-m', 'pip', '--python', py]
    if sys.prefix != sys.base_prefix:
        # this Python is a venv itself: the new venv's system site is the
        # base interpreter's, so add this one's site-packages (torch)
        purelib = subprocess.run(
            [py, '-c', 'import sysconfig; print(sysconfig.get_paths()'
             '["purelib"])'], check=True, capture_output=True,
            text=True).stdout.strip()
        with open(osp.join(purelib, '_gpu_check_parent_site.pth'),
                  'w') as f:
            f.write('import site; ' + '; '.join(
                f'site.addsitedir({d!r})' for d in site.getsitepackages())
                + '\n')
    # --ignore-installed: the pinned wheels go into the venv even where the
    # image has another (or the same) version
    quiet = ['install', '-q', '--no-index', '--no-deps',
             '--ignore-installed', '--disable-pip-version-check']
    _run(pip + quiet + ['--find-links', args.wheels] + deps)
    if args.project_wheel and project:
        _run(pip + quiet + [osp.join(args.wheels, project[0])])
    else:
        _run(pip + quiet + ['--no-build-isolation', '-e', REPO])
    with open(stamp, 'w') as f:
        f.write(want)
    return py


def measure(args):
    from mmseg_contrast.tooling import gpu_check
    from mmseg_contrast.tooling.gpu_check_report import format_table
    cases = [c for c in gpu_check.CASES
             if not args.models or c.name in args.models]
    unknown = set(args.models or []) - {c.name for c in cases}
    if unknown:
        raise SystemExit(f'unknown --models {sorted(unknown)}; known: '
                         f'{[c.name for c in gpu_check.CASES]}')
    outs = [args.out]
    if args.copy_to:
        outs.append(osp.join(args.copy_to, 'gpu_check.json'))
    result = gpu_check.run_checks(
        REPO, outs, cases=cases, precisions=tuple(args.precisions),
        iters=args.iters, warmup=args.warmup, sync_iters=args.sync_iters,
        budget_s=args.budget_s, skip=tuple(args.skip))
    print(format_table(result))
    print('written:', ', '.join(outs))
    return 0 if result['status'] == 'ok' else 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    why = cuda_problem()
    if why:
        print(NEEDS_GPU.format(why=why), file=sys.stderr)
        return 2
    if args.in_venv or args.no_venv:
        return measure(args)
    py = setup_venv(args)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run([py, osp.abspath(__file__), '--in-venv', *argv],
                          cwd=REPO, env=env).returncode


if __name__ == '__main__':
    sys.exit(main())
