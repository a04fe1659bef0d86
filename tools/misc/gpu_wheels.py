"""Download the wheels a GPU machine without a package registry needs.

    python tools/misc/gpu_wheels.py              # -> gpu_wheels/ (make
                                                 #    gpu-wheels)
    python tools/misc/gpu_wheels.py --check-only

Fetches every pin of ``requirements/gpu_wheels.txt`` for CPython 3.12 on
x86-64 Linux (``pip download --no-deps --only-binary=:all:``), removes other
versions left in the folder, builds this project's wheel from a clean copy
of the work tree, checks that every ``Requires-Dist`` of every wheel is in
the folder or in the GPU image (``mmseg_contrast.tooling.gpu_check_wheels.
IMAGE_PROVIDES``), and prints the sizes and the total (the device tool
carries at most 64 MiB, work tree included). ``tools/analysis/gpu_check.py``
installs the folder on the GPU machine with ``pip install --no-index``.
"""
import argparse
import os
import os.path as osp
import sys

from mmseg_contrast.tooling import gpu_check_wheels as gw

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dest', default=osp.join(REPO, 'gpu_wheels'))
    p.add_argument('--requirements',
                   default=osp.join(REPO, 'requirements', 'gpu_wheels.txt'))
    p.add_argument('--python-version', default=gw.PYTHON_VERSION)
    p.add_argument('--no-project', action='store_true',
                   help="do not build this project's wheel")
    p.add_argument('--check-only', action='store_true',
                   help='only check and size the folder (no download)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.dest, exist_ok=True)
    pins = gw.read_pins(args.requirements)
    if not args.check_only:
        gw.download(args.requirements, args.dest, args.python_version)
        for fname in gw.remove_unpinned(args.dest, pins):
            print(f'removed (not pinned): {fname}')
        if not args.no_project:
            print('built', gw.build_project_wheel(REPO, args.dest))
    wheels = gw.folder_wheels(args.dest)
    lines, total = gw.size_table(wheels)
    print('\n'.join(lines))
    have = {(name, version) for name, version, _ in wheels.values()}
    missing = [f'{n}=={v}' for n, v in pins if (n, v) not in have]
    unmet = gw.unmet_requirements(wheels)
    for name, req in unmet:
        print(f'UNMET: {name} requires {req!r} (neither a wheel here nor '
              f'in the GPU image)')
    for pin in missing:
        print(f'MISSING: {pin} is pinned but has no wheel in {args.dest}')
    if total > gw.CARRY_LIMIT:
        print(f'TOO LARGE: {total / 2**20:.1f} MiB')
    return 1 if (unmet or missing or total > gw.CARRY_LIMIT) else 0


if __name__ == '__main__':
    sys.exit(main())
