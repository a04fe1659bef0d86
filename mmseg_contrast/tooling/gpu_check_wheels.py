"""The wheels a GPU machine without a package registry needs (``make
gpu-wheels``, ``tools/misc/gpu_wheels.py``).

The pinned list is ``requirements/gpu_wheels.txt``: the OpenMMLab packages
and their small dependencies, for CPython 3.12 on x86-64 Linux (compiled
ones, e.g. regex and pyyaml, as ``cp312`` manylinux wheels). Everything else
is assumed to be in the machine's image (:data:`IMAGE_PROVIDES`).
:func:`unmet_requirements` reads every wheel's ``Requires-Dist`` and names
what is neither in the folder nor in the image, so the closure is checked,
not guessed. :func:`build_project_wheel` adds this project's own wheel, built
from a clean copy of the work tree (building in place would replace the
editable install's ``mmseg_contrast/.mim`` links by copies).
"""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = 'mmseg-contrast'
#: what the device tool carries at most (the working tree included)
CARRY_LIMIT = 64 * 2**20
PYTHON_VERSION = '3.12'
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64',
             'manylinux_2_17_x86_64', 'manylinux2014_x86_64',
             'manylinux1_x86_64')
#: distributions the GPU image is assumed to hold: torch (+ its own
#: requirements), numpy 2.x, opencv-python-headless, scipy, matplotlib,
#: scikit-learn and what those three require
IMAGE_PROVIDES = frozenset(canonicalize_name(n) for n in (
    'torch', 'triton', 'filelock', 'typing-extensions', 'sympy', 'mpmath',
    'networkx', 'jinja2', 'markupsafe', 'fsspec', 'numpy',
    'opencv-python-headless', 'scipy', 'matplotlib', 'contourpy', 'cycler',
    'fonttools', 'kiwisolver', 'pillow', 'pyparsing', 'python-dateutil',
    'six', 'scikit-learn', 'joblib', 'threadpoolctl'))
#: a requirement satisfied by another distribution of the image
ALIASES = {'opencv-python': 'opencv-python-headless'}
#: the marker environment of the GPU machine
MARKER_ENV = dict(
    python_version=PYTHON_VERSION, python_full_version=PYTHON_VERSION + '.0',
    sys_platform='linux', platform_system='Linux', platform_machine='x86_64',
    os_name='posix', implementation_name='cpython',
    platform_python_implementation='CPython', extra='')


def read_pins(path):
    """``[(name, version)]`` of a requirements file of ``name==version``
    lines (comments and blank lines skipped)."""
    pins = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            req = Requirement(line)
            specs = list(req.specifier)
            if len(specs) != 1 or specs[0].operator != '==':
                raise ValueError(f'{path}: pin an exact version: {line!r}')
            pins.append((canonicalize_name(req.name), specs[0].version))
    return pins


def wheel_metadata(path):
    """``(name, version, requires)`` from a wheel's METADATA."""
    with zipfile.ZipFile(path) as zf:
        meta, = [n for n in zf.namelist()
                 if re.fullmatch(r'[^/]+\.dist-info/METADATA', n)]
        msg = Parser().parsestr(zf.read(meta).decode('utf-8'))
    return (canonicalize_name(msg['Name']), msg['Version'],
            msg.get_all('Requires-Dist') or [])


def unmet_requirements(wheels, image=IMAGE_PROVIDES, env=None,
                       skip=(PROJECT, )):
    """``[(wheel name, requirement)]`` of every ``Requires-Dist`` (whose
    marker holds on the GPU machine) that is neither one of ``wheels`` (at a
    matching version) nor provided by ``image``.

    ``wheels`` maps a wheel file to its ``(name, version, requires)``. The
    requirements of the ``skip`` wheels are not read: this project's are
    the CPU machine's pins (``requirements/runtime.txt``), and it is
    installed with ``--no-deps``.
    """
    env = dict(MARKER_ENV, **(env or {}))
    have = {name: version for name, version, _ in wheels.values()}
    unmet = []
    for name, _, requires in sorted(wheels.values()):
        if name in skip:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is not None and not Marker(
                    str(req.marker)).evaluate(env):
                continue
            dep = canonicalize_name(req.name)
            dep = canonicalize_name(ALIASES.get(dep, dep))
            if dep in have:
                if req.specifier.contains(have[dep], prereleases=True):
                    continue
            elif dep in image:
                continue
            unmet.append((name, line))
    return unmet


def download(pins_file, dest, python_version=PYTHON_VERSION,
             pip=(sys.executable, '-m', 'pip')):
    """``pip download`` every pin (no dependency resolution: the list is
    the closure) as wheels for CPython ``python_version`` on x86-64 Linux.
    """
    abi = 'cp' + python_version.replace('.', '')
    cmd = [*pip, 'download', '--no-deps', '--only-binary=:all:',
           '--python-version', python_version, '--implementation', 'cp',
           '--abi', abi, '-d', dest, '-r', pins_file]
    for plat in PLATFORMS:
        cmd += ['--platform', plat]
    subprocess.run(cmd, check=True)


def remove_unpinned(dest, pins, keep=(PROJECT, )):
    """Delete wheels of ``dest`` that are not a pinned version (an older
    download would be a second version of a package: pip refuses those)."""
    wanted = set(pins)
    removed = []
    for fname in sorted(os.listdir(dest)):
        if not fname.endswith('.whl'):
            continue
        name, version, _ = wheel_metadata(osp.join(dest, fname))
        if (name, version) not in wanted and name not in keep:
            os.remove(osp.join(dest, fname))
            removed.append(fname)
    return removed


def work_tree_files(repo):
    """Tracked and untracked-not-ignored files of the work tree."""
    out = subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=repo,
        capture_output=True, check=True).stdout.decode()
    return [f for f in out.split('\0')
            if f and osp.isfile(osp.join(repo, f))]


def build_project_wheel(repo, dest, pip=(sys.executable, '-m', 'pip')):
    """Build this project's wheel from a clean copy of the work tree into
    ``dest`` (replacing an older one); return its path."""
    for old in os.listdir(dest):
        if old.startswith('mmseg_contrast-') and old.endswith('.whl'):
            os.remove(osp.join(dest, old))
    with tempfile.TemporaryDirectory() as tmp:
        src = osp.join(tmp, 'src')
        for rel in work_tree_files(repo):
            os.makedirs(osp.join(src, osp.dirname(rel)), exist_ok=True)
            shutil.copy2(osp.join(repo, rel), osp.join(src, rel))
        subprocess.run([*pip, 'wheel', '-q', '--no-deps',
                        '--no-build-isolation', '-w', dest, src],
                       check=True)
    wheel, = [f for f in os.listdir(dest)
              if f.startswith('mmseg_contrast-') and f.endswith('.whl')]
    return osp.join(dest, wheel)


def folder_wheels(dest):
    """``{path: (name, version, requires)}`` of the wheels in ``dest``."""
    return {osp.join(dest, f): wheel_metadata(osp.join(dest, f))
            for f in sorted(os.listdir(dest)) if f.endswith('.whl')}


def size_table(wheels):
    """Lines ``size  file`` and the total, largest first."""
    sizes = sorted(((osp.getsize(p), osp.basename(p)) for p in wheels),
                   reverse=True)
    total = sum(s for s, _ in sizes)
    lines = [f'{s / 2**20:8.2f} MiB  {f}' for s, f in sizes]
    lines.append(f'{total / 2**20:8.2f} MiB  total ({len(sizes)} wheels, '
                 f'limit {CARRY_LIMIT / 2**20:.0f} MiB with the work tree)')
    return lines, total
