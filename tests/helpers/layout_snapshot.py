"""Snapshots that prove a code move changed no behaviour.

``registered_names()``: every name the plugin registers, per scope and
registry (``{'mmseg.MODELS': {'ContrastASPPHead': 'ContrastASPPHead', ...}}``,
type name -> class ``__qualname__``; the defining module is left out on
purpose, since a move changes it).

``resolved_configs()``: ``Config.fromfile(f).to_dict()`` of every config under
``configs/``, as canonical JSON with the repository root replaced by
``<repo>``. Top-level names starting with ``_`` are left out: they are
config-time helper variables that a ``_base_`` file defines for its children
to reference (``_base_._contrast_loss``); mmengine, mmseg and the tools never
read them (the snapshot taken before the layout change holds none).

``python tests/helpers/layout_snapshot.py`` rewrites
``tests/data/snapshots/*.json``; do that only for a change that is *meant* to
alter a registered name or a resolved config, and say so in the commit.
"""
import functools
import glob
import json
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SNAPSHOT_DIR = osp.join(REPO, 'tests', 'data', 'snapshots')
SCOPES = ('mmseg', 'mmpretrain')


def _registries(scope):
    import importlib
    reg_mod = importlib.import_module(f'{scope}.registry')
    from mmengine.registry import Registry
    for attr in sorted(dir(reg_mod)):
        obj = getattr(reg_mod, attr)
        if isinstance(obj, Registry):
            yield attr, obj


def registered_names():
    """``{'<scope>.<REGISTRY>': {type name: qualname}}`` of our names."""
    import mmseg_contrast  # noqa: F401
    out = {}
    for scope in SCOPES:
        for attr, reg in _registries(scope):
            names = {}
            for name, obj in reg.module_dict.items():
                module = getattr(obj, '__module__', '') or ''
                if module.split('.')[0] == 'mmseg_contrast':
                    names[name] = getattr(obj, '__qualname__', repr(obj))
            if names:
                out[f'{scope}.{attr}'] = dict(sorted(names.items()))
    return out


def config_files():
    files = glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(f, REPO) for f in files
                  if osp.basename(f) != '__init__.py'
                  and '_base_' not in f.split(os.sep))


def _canonical(obj):
    text = json.dumps(obj, sort_keys=True, default=repr)
    return json.loads(text.replace(REPO, '<repo>'))


def resolved_config(rel):
    from mmengine.config import Config

    import mmseg_contrast  # noqa: F401  (mmseg:: resolution, registries)
    cfg = Config.fromfile(osp.join(REPO, rel)).to_dict()
    return _canonical({k: v for k, v in cfg.items() if not k.startswith('_')})


def resolved_configs():
    return {rel: resolved_config(rel) for rel in config_files()}


def snapshot_path(kind):
    return osp.join(SNAPSHOT_DIR, f'{kind}.json')


@functools.lru_cache(maxsize=None)
def load_snapshot(kind):
    with open(snapshot_path(kind)) as f:
        return json.load(f)


def write_snapshots():
    os.makedirs(SNAPSHOT_DIR, exist_ok=True)
    for kind, data in (('registered_names', registered_names()),
                       ('resolved_configs', resolved_configs())):
        with open(snapshot_path(kind), 'w') as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write('\n')
        print(f'wrote {snapshot_path(kind)} ({len(data)} entries)')


if __name__ == '__main__':
    sys.exit(write_snapshots())
