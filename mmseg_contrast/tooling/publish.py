"""Turn a training checkpoint into a release file.

Used by ``tools/misc/publish_model.py``.

Training-only state is removed:

* top-level ``optimizer``, ``param_schedulers``, ``message_hub``,
  ``ema_state_dict`` (EMAHook's resume copy; ``state_dict`` already holds the
  EMA weights when EMAHook is on) and ``meta`` entries other than
  :data:`KEEP_META` (``hook_msgs`` would leak the training machine's paths);
* memory banks in ``state_dict``: any key with a component containing
  ``memory`` or ``queue``, or ending in ``_ptr`` (pixel / segment queues and
  their pointers, DenseCL's queues);
* the other branch of a mean-teacher (semi-supervised) checkpoint: only
  ``semi_branch`` (default the teacher, which ``SemiSegmentor`` predicts
  with) is kept, under plain keys, so the file loads into the supervised
  config. Handles this project's layout (teacher = plain keys, student =
  ``student.*``) and mmdet's (``teacher.*`` + ``student.*``);
* optionally (``strip_proj=True``) the contrastive projection head
  (``*.proj_head.*``, ReCo's ``*.reco_proj.*``): inference never uses it,
  and a checkpoint without it
  loads into the stock mmseg head.

The file is named ``<stem>_<YYYYMMDD>-<sha256[:8]>.pth`` with the hash of the
*written* file (mmseg's own script hashes the input and uses
``rstrip('.pth')``, which strips characters, not the suffix).
"""
import hashlib
import os
import os.path as osp
import re
import time
from collections import OrderedDict
from typing import Dict, Optional

import torch

from ..checkpoint.safety import load_checkpoint_file

__all__ = [
    'TRAINING_ONLY_TOP_LEVEL', 'KEEP_META', 'is_memory_key',
    'is_proj_key', 'PROJ_ATTRS', 'strip_checkpoint', 'publish_checkpoint'
]

TRAINING_ONLY_TOP_LEVEL = ('optimizer', 'param_schedulers', 'message_hub',
                           'ema_state_dict', 'scheduler', 'lr_scheduler')
KEEP_META = ('dataset_meta', 'mmengine_version', 'seed', 'epoch', 'iter',
             'experiment_name')

_MEMORY = re.compile(r'(^|\.)[^.]*(memory|queue)[^.]*(\.|$)|_ptr$')


def is_memory_key(key: str) -> bool:
    """Memory-bank / queue buffers (``*memory*``, ``*queue*``, ``*_ptr``)."""
    return _MEMORY.search(key) is not None


#: attribute names of the embedding heads (ContrastiveSeg heads, ReCo heads)
PROJ_ATTRS = ('proj_head', 'reco_proj')


def is_proj_key(key: str) -> bool:
    """Projection / representation head weights (``*.proj_head.*``,
    ``*.reco_proj.*``)."""
    return any(f'.{a}.' in f'.{key}' for a in PROJ_ATTRS)


def _select_semi_branch(sd: dict, branch: str, removed: dict) -> dict:
    """Keep one branch of a mean-teacher checkpoint under plain keys.

    Two layouts exist: this project's ``SemiSegmentor`` saves the teacher
    under the plain segmentor keys and the student under ``student.*``;
    mmdet-style ``SemiBaseDetector`` checkpoints have ``teacher.*`` and
    ``student.*``. Either way the result holds only ``branch`` with plain
    keys, so it loads into the supervised config.
    """
    has_s = any(k.startswith('student.') for k in sd)
    has_t = any(k.startswith('teacher.') for k in sd)
    if not (has_s or has_t):
        return sd
    plain = {k: v for k, v in sd.items()
             if not k.startswith(('student.', 'teacher.'))}
    students = {k[8:]: v for k, v in sd.items() if k.startswith('student.')}
    teachers = {k[8:]: v for k, v in sd.items() if k.startswith('teacher.')}
    if not has_t:  # plain keys = teacher (mmseg_contrast SemiSegmentor)
        teachers, plain = plain, {}
    keep, drop = (teachers, students) if branch == 'teacher' else \
        (students, teachers)
    if not keep:
        raise ValueError(f'the checkpoint has no {branch} weights')
    removed['semi_' + ('student' if branch == 'teacher' else 'teacher')] = \
        len(drop)
    out = OrderedDict(plain)  # e.g. data_preprocessor buffers
    out.update(keep)
    return out


def strip_checkpoint(ckpt: dict,
                     strip_proj: bool = False,
                     semi_branch: str = 'teacher') -> (dict, Dict[str, int]):
    """Return ``(published_ckpt, removed)`` where ``removed`` counts what
    was dropped per category.

    ``semi_branch`` ('teacher' or 'student'): which branch of a
    mean-teacher checkpoint is published (under plain keys); the other one
    is training-only state. The teacher is what ``SemiSegmentor`` predicts
    with by default.
    """
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise ValueError('Not an mmengine checkpoint: no "state_dict" key')
    if semi_branch not in ('teacher', 'student'):
        raise ValueError(f"semi_branch must be 'teacher' or 'student', got "
                         f'{semi_branch!r}')
    removed = {'top_level': 0, 'memory': 0, 'proj_head': 0}
    out = OrderedDict()
    for k, v in ckpt.items():
        if k in TRAINING_ONLY_TOP_LEVEL:
            removed['top_level'] += 1
            continue
        out[k] = v
    sd = _select_semi_branch(dict(ckpt['state_dict']), semi_branch, removed)
    kept = OrderedDict()
    for k, v in sd.items():
        if is_memory_key(k):
            removed['memory'] += 1
        elif strip_proj and is_proj_key(k):
            removed['proj_head'] += 1
        else:
            kept[k] = v
    if not kept:
        raise ValueError('Nothing left in state_dict after stripping')
    out['state_dict'] = kept
    meta = ckpt.get('meta') or {}
    out['meta'] = {k: meta[k] for k in KEEP_META if k in meta}
    return out, removed


def publish_checkpoint(in_file: str,
                       out_file: str,
                       strip_proj: bool = False,
                       semi_branch: str = 'teacher',
                       date: Optional[str] = None) -> (str, Dict[str, int]):
    """Strip ``in_file`` and write ``<out stem>_<date>-<sha[:8]>.pth``.

    ``out_file`` is a path whose ``.pth`` suffix (if any) is removed to get
    the stem, e.g. ``work_dirs/deeplabv3_mnv2_aal_cpu`` (normally the config
    stem). Returns the final path and the removal counts.
    """
    if not osp.isfile(in_file):
        raise FileNotFoundError(f'Checkpoint not found: {in_file}')
    ckpt = load_checkpoint_file(in_file, map_location='cpu')
    out, removed = strip_checkpoint(ckpt, strip_proj, semi_branch)
    date = date or time.strftime('%Y%m%d')
    if not re.fullmatch(r'\d{8}', date):
        raise ValueError(f'date must be YYYYMMDD, got {date!r}')
    stem = out_file.removesuffix('.pth')
    out_dir = osp.dirname(stem)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    tmp = f'{stem}_{date}.pth.tmp'
    torch.save(out, tmp)
    h = hashlib.sha256()
    with open(tmp, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    final = f'{stem}_{date}-{h.hexdigest()[:8]}.pth'
    os.replace(tmp, final)
    return final, removed
