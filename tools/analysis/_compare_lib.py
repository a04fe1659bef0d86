"""Run bookkeeping for ``compare_runs.py``: arms, options, schedule
overrides, run signatures, the reuse/resume decision and the commands.

Layout of a comparison work root::

    WORK_ROOT/<arm>/seed_<S>/            tools/train.py --work-dir
        run.json                         signature + state (written first)
        train.log, test.log              full subprocess output
        test/<timestamp>/<timestamp>.json  metrics written by tools/test.py
        result.json                      the finished run (written last)

A run is *finished* when its ``result.json`` exists and its signature matches
the requested run. The signature has a train part (config path and content
hash, all train cfg-options after seed formatting and schedule overrides,
extra train arguments, seed, world size) and a test part (test-only
cfg-options). See ``plan_run`` for what a mismatch does.
"""
import argparse
import hashlib
import json
import math
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OptionsT = Union[Sequence[str], Dict[str, object], None]


class CompareError(RuntimeError):
    """A problem the user can fix; the CLI prints it without a traceback."""


@dataclass
class ArmSpec:
    """One recipe of a comparison.

    Args:
        name: arm name (a directory name: letters, digits, ``._+-``).
        config: config file path.
        cfg_options: ``KEY=VALUE`` strings or a ``{key: value}`` dict, passed
            to tools/train.py and tools/test.py; ``{seed}`` in a string is
            replaced by the run's seed (e.g. a per-seed ``load_from``).
        train_args: extra tools/train.py arguments, e.g. ``['--amp']``.
    """
    name: str
    config: str
    cfg_options: OptionsT = None
    train_args: List[str] = field(default_factory=list)

    def __post_init__(self):
        if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9._+-]*', self.name or ''):
            raise CompareError(
                f'arm name {self.name!r} is not a valid directory name '
                '(use letters, digits and ._+-)')


def _fmt_value(v):
    if isinstance(v, (list, tuple)):
        o, c = ('[', ']') if isinstance(v, list) else ('(', ')')
        return o + ','.join(_fmt_value(x) for x in v) + c
    if isinstance(v, dict):
        raise CompareError(f'cfg option value {v!r} is a dict; give its '
                           'entries as dotted keys instead')
    return str(v)


def option_list(options: OptionsT, seed: Optional[int] = None) -> List[str]:
    """``KEY=VALUE`` strings from a list or dict, ``{seed}`` filled in."""
    if not options:
        return []
    if isinstance(options, dict):
        items = [f'{k}={_fmt_value(v)}' for k, v in options.items()]
    elif isinstance(options, str):
        items = [options]
    else:
        items = [str(o) for o in options]
    for item in items:
        if '=' not in item or item.startswith('='):
            raise CompareError(f'cfg option {item!r} is not KEY=VALUE')
    if seed is not None:
        items = [o.replace('{seed}', str(seed)) for o in items]
    return items


def parse_options(options: Sequence[str]) -> dict:
    """Parse ``KEY=VALUE`` strings exactly like tools/train.py does."""
    from mmengine.config import DictAction
    if not options:
        return {}
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--o', nargs='+', action=DictAction)
    return parser.parse_args(['--o', *options]).o


def load_config(path: str, options: Sequence[str] = ()):
    """The config with ``options`` merged; a clear error if it cannot be
    read (missing file, syntax error, unknown base, bad option)."""
    if not osp.isfile(path):
        raise CompareError(f'config {path} does not exist')
    sys.path.insert(0, REPO)
    import mmseg_contrast  # noqa: F401  (compat layer before the config)
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(parse_options(options))
    except Exception as e:  # any parse/merge error: name the config
        raise CompareError(f'config {path} cannot be loaded (stage: config) '
                           f'with options {list(options)}: '
                           f'{type(e).__name__}: {e}') from None
    return cfg


def _scale(v, r, lo=1):
    return max(lo, int(math.floor(v * r + 0.5)))


def schedule_overrides(cfg, max_iters: Optional[int] = None,
                       val_interval: Optional[int] = None) -> List[str]:
    """cfg-options that change the schedule of an iteration-based ``cfg``.

    ``max_iters=N`` rescales everything counted in iterations by
    ``r = N / train_cfg.max_iters``: ``val_interval``, every iteration-based
    ``param_scheduler`` entry's ``begin`` / ``end`` / ``T_max`` /
    ``milestones`` / ``step_size`` (an ``end`` at or past the old length
    becomes ``N``), the checkpoint interval, ``*_iters`` of
    ``custom_hooks`` (e.g. ``ContrastWarmupHook.warmup_iters``); the logger
    interval is capped at ``N``. ``val_interval`` (if given) is set as is.
    """
    if max_iters is None and val_interval is None:
        return []
    loop = cfg.get('train_cfg') or {}
    if 'max_iters' not in loop:
        raise CompareError(
            '--max-iters/--val-interval need an iteration-based config '
            f'(train_cfg.max_iters); got train_cfg={dict(loop)}. Set its '
            'schedule with --cfg-options instead.')
    out = {}
    if max_iters is not None:
        if max_iters < 1:
            raise CompareError(f'--max-iters must be >= 1, got {max_iters}')
        old = int(loop['max_iters'])
        r = max_iters / old
        out['train_cfg.max_iters'] = max_iters
        if 'val_interval' in loop:
            out['train_cfg.val_interval'] = min(
                max_iters, _scale(loop['val_interval'], r))
        sched = cfg.get('param_scheduler') or []
        entries = [(f'param_scheduler.{i}.', s) for i, s in enumerate(sched)
                   ] if isinstance(sched, list) else [('param_scheduler.',
                                                       sched)]
        for prefix, s in entries:
            if s.get('by_epoch', True) and not s.get('convert_to_iter_based'):
                continue  # epoch-based entry: counted in epochs, not iters
            if 'begin' in s:
                out[prefix + 'begin'] = _scale(s['begin'], r, lo=0)
            begin = out.get(prefix + 'begin', 0)
            end = s.get('end', math.inf)
            out[prefix + 'end'] = max(
                begin + 1, max_iters if end >= old else _scale(end, r))
            for key in ('T_max', 'step_size'):
                if key in s:
                    out[prefix + key] = _scale(s[key], r)
            if 'milestones' in s:
                out[prefix + 'milestones'] = [
                    _scale(x, r) for x in s['milestones']]
        hooks = cfg.get('default_hooks') or {}
        ckpt = hooks.get('checkpoint') or {}
        if 'interval' in ckpt and not ckpt.get('by_epoch', True):
            out['default_hooks.checkpoint.interval'] = min(
                max_iters, _scale(ckpt['interval'], r))
        logger = hooks.get('logger') or {}
        if 'interval' in logger:
            out['default_hooks.logger.interval'] = max(
                1, min(int(logger['interval']), max_iters))
        for i, h in enumerate(cfg.get('custom_hooks') or []):
            for k, v in h.items():
                if (k.endswith('_iters') and isinstance(v, int)
                        and not isinstance(v, bool)):
                    out[f'custom_hooks.{i}.{k}'] = _scale(v, r, lo=0)
    if val_interval is not None:
        out['train_cfg.val_interval'] = val_interval
    return option_list(out)


def display_path(path: str) -> str:
    """Path relative to the repository if inside it, else absolute."""
    ap = osp.abspath(path)
    rel = osp.relpath(ap, REPO)
    return ap if rel.startswith('..') else rel


def file_sha256(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _digest(obj) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_signature(config, seed, train_options, train_args, world_size,
                   test_options):
    """``({'train': hash, 'test': hash}, fields)`` of one run."""
    fields = dict(
        train=dict(config=display_path(config),
                   config_sha256=file_sha256(config),
                   cfg_options=list(train_options),
                   train_args=list(train_args), seed=int(seed),
                   world_size=int(world_size)),
        test=dict(test_cfg_options=list(test_options)))
    return {k: _digest(v) for k, v in fields.items()}, fields


def read_json(path):
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None  # a damaged record is treated as absent


def write_json(path, obj):
    """Write atomically (no half-written file after an interruption)."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _diff_options(a, b):
    """``KEY=VALUE`` list changes: ``key: old -> new``, ``+k=v``, ``-k=v``."""
    da = dict(o.split('=', 1) for o in a if '=' in o)
    db = dict(o.split('=', 1) for o in b if '=' in o)
    if len(da) != len(a) or len(db) != len(b):  # repeated keys: item diff
        return ([f'-{x}' for x in a if x not in b]
                + [f'+{x}' for x in b if x not in a])
    out = [f'{k}: {da[k]} -> {db[k]}' for k in da
           if k in db and da[k] != db[k]]
    out += [f'-{k}={v}' for k, v in da.items() if k not in db]
    out += [f'+{k}={v}' for k, v in db.items() if k not in da]
    return out or ['same options, other order']


def _diff_fields(old, new):
    """Readable differences of two signature field dicts."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, list) and isinstance(b, list):
            out.append(f'{k}: ' + '; '.join(_diff_options(a, b)))
        else:
            out.append(f'{k}: {a!r} -> {b!r}')
    return out


def plan_run(run_dir: str, signature: dict, fields: dict) -> dict:
    """What to do for one run: ``{'action': ..., ...}`` with action one of

    - ``skip``: ``result.json`` matches (train and test signature);
    - ``test``: trained with a matching train signature (only the test
      options changed, or the test step did not finish): evaluate again;
    - ``resume``: a matching training run was interrupted after writing a
      checkpoint: ``tools/train.py --resume``;
    - ``train``: nothing usable: train from scratch;
    - ``mismatch``: the run dir holds a run with another train signature
      (``changes`` lists the fields); the caller errors or, with
      ``overwrite``, moves the old run aside.
    """
    res = read_json(osp.join(run_dir, 'result.json'))
    state = read_json(osp.join(run_dir, 'run.json'))
    rec = res or state
    if rec and rec.get('signature', {}).get('train') != signature['train']:
        old = rec.get('signature_fields', {}).get('train', {})
        return dict(action='mismatch',
                    changes=_diff_fields(old, fields['train']))
    if res and res['signature'].get('test') == signature['test']:
        return dict(action='skip', result=res)
    for r in (res, state):
        ck = r and r.get('checkpoint')
        if ck and osp.isfile(osp.join(run_dir, ck)):
            return dict(action='test', checkpoint=ck, record=r)
    if state:
        marker = osp.join(run_dir, 'last_checkpoint')
        if osp.isfile(marker):
            with open(marker) as f:
                last = f.read().strip()
            if last and osp.isfile(last):
                return dict(action='resume', checkpoint=last)
    return dict(action='train')


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


def run_logged(cmd, log_path, stage, arm, config, echo=False):
    """Run ``cmd`` from the repo root, output to ``log_path`` (and stdout
    with ``echo``); a failure raises ``CompareError`` naming the arm, config
    and stage with the log's tail."""
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
        rc = proc.wait()
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


def read_test_metrics(test_dir, known=()):
    """Metrics of the newest ``test/<ts>/<ts>.json`` not in ``known``."""
    found = []
    if osp.isdir(test_dir):
        for ts in os.listdir(test_dir):
            p = osp.join(test_dir, ts, ts + '.json')
            if osp.isfile(p) and p not in known:
                found.append(p)
    if not found:
        return None, None
    path = max(found)
    with open(path) as f:
        metrics = json.load(f)
    return {k: v for k, v in metrics.items()
            if k not in ('data_time', 'time', 'step')}, path


def list_test_jsons(test_dir):
    return set() if not osp.isdir(test_dir) else {
        osp.join(test_dir, ts, ts + '.json') for ts in os.listdir(test_dir)}


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
