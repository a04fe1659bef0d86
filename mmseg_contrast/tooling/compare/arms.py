"""Arms of a comparison and their config options: :class:`ArmSpec`,
``KEY=VALUE`` option lists (:func:`option_list`, :func:`parse_options`) and
config loading with one clear error (:func:`load_config`)."""
import argparse
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from mmengine.config import Config, DictAction

__all__ = [
    'OptionsT', 'CompareError', 'ArmSpec', 'option_list', 'parse_options',
    'load_config'
]

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
    try:
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(parse_options(options))
    except Exception as e:  # any parse/merge error: name the config
        raise CompareError(f'config {path} cannot be loaded (stage: config) '
                           f'with options {list(options)}: '
                           f'{type(e).__name__}: {e}') from None
    return cfg
