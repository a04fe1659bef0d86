"""Running ``tools/train.py`` / ``tools/test.py`` for a comparison: the
launcher prefix (:func:`launch_prefix`), a subprocess whose output goes to
a log (:func:`stream_to_log`; :func:`run_logged` adds a one-message error)
and the code version (:func:`git_version`)."""
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

from .arms import CompareError

__all__ = [
    'REPO', 'launch_prefix', 'stream_to_log', 'run_logged', 'git_version'
]

#: the repository root: the working directory of every train / test run
REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def launch_prefix(launcher='none', nproc=1, port=29500, srun_args=''):
    """Interpreter + launcher in front of tools/train.py / tools/test.py,
    mirroring tools/dist_train.sh and tools/slurm_train.sh."""
    py = sys.executable
    if launcher == 'none':
        if nproc != 1:
            raise CompareError(f'--nproc {nproc} needs --launcher pytorch '
                               'or slurm')
        return [py]
    if launcher == 'pytorch':
        return [py, '-m', 'torch.distributed.run',
                f'--nproc_per_node={nproc}', f'--master_port={port}']
    if launcher == 'slurm':
        return ['srun', f'--ntasks={nproc}', '--kill-on-bad-exit=1',
                *shlex.split(srun_args or ''), py, '-u']
    raise CompareError(f'unknown launcher {launcher!r} '
                       '(none, pytorch, slurm)')


_ERR_RE = re.compile(r'^\w*(Error|Exception|Interrupt)\b.*')


def stream_to_log(cmd, log_path, echo=False, on_line=None):
    """Run ``cmd`` from the repo root with its output (stdout + stderr)
    written line by line to ``log_path``, echoed to stdout with ``echo``
    and passed to ``on_line(line)``; return the exit status."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, env.get('PYTHONPATH')) if p)
    with open(log_path, 'w') as log, subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors='replace', bufsize=1, env=env) as proc:
        for line in proc.stdout:
            log.write(line)
            if echo:
                sys.stdout.write(line)
            if on_line is not None:
                on_line(line)
        return proc.wait()


def run_logged(cmd, log_path, stage, arm, config, echo=False):
    """:func:`stream_to_log`; a failure raises ``CompareError`` naming the
    arm, config and stage with the log's tail."""
    rc = stream_to_log(cmd, log_path, echo)
    if rc == 0:
        return
    with open(log_path, errors='replace') as f:
        lines = f.read().splitlines()
    errors = [ln for ln in lines if _ERR_RE.match(ln)]
    tail = '\n'.join('    ' + ln for ln in lines[-12:])
    raise CompareError(
        f'arm {arm!r}, config {config}: the {stage} stage (tools/{stage}.py)'
        f' failed (exit {rc})'
        + (f'\n  error: {errors[-1]}' if errors else '')
        + f'\n  log: {log_path}\n  last lines of the log:\n{tail}')


def git_version():
    try:
        sha = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO,
                             capture_output=True, text=True, timeout=20)
        dirty = subprocess.run(['git', 'status', '--porcelain',
                                '--untracked-files=no'], cwd=REPO,
                               capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ('+dirty' if dirty.stdout.strip() else '')
