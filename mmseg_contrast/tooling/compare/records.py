"""Run records of a comparison work root: signatures, the JSON files of a
run and the reuse / resume decision (:func:`plan_run`).

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
cfg-options). See :func:`plan_run` for what a mismatch does.
"""
import hashlib
import json
import os
import os.path as osp

from ...checkpoint.saving import atomic_write_text
from .launch import REPO

__all__ = [
    'display_path', 'file_sha256', 'make_signature', 'read_json',
    'write_json', 'plan_run', 'read_test_metrics', 'list_test_jsons'
]


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
    atomic_write_text(json.dumps(obj, indent=1), path)


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
