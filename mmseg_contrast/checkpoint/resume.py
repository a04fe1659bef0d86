"""Which checkpoint ``--resume`` continues from.

mmengine reads ``<work_dir>/last_checkpoint`` and fails on a missing, empty
or unreadable target (``FileNotFoundError:  can not be found.``), although
an older complete checkpoint may sit next to it. :func:`find_resume_checkpoint`
checks the named file first (exists, passes the integrity check) and
otherwise falls back to the newest loadable ``iter_N.pth`` / ``epoch_N.pth``
of the work dir, with a warning naming both files.
"""
import os
import os.path as osp
import re
import warnings
from typing import List, Optional

from .errors import CorruptCheckpointError
from .integrity import verify_checkpoint_file

__all__ = ['NoResumableCheckpointError', 'find_resume_checkpoint',
           'checkpoint_step', 'step_checkpoints']

_STEP = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


class NoResumableCheckpointError(FileNotFoundError):
    """The work dir has checkpoints, but none of them can be loaded."""


def checkpoint_step(name: str) -> Optional[int]:
    """``N`` of an ``iter_N.pth`` / ``epoch_N.pth`` file name, else None."""
    m = _STEP.match(osp.basename(name))
    return int(m.group(2)) if m else None


def step_checkpoints(folder: str) -> List[str]:
    """``iter_N.pth`` / ``epoch_N.pth`` files of ``folder``, newest first
    (highest step, then latest modification)."""
    if not osp.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        step = checkpoint_step(name)
        path = osp.join(folder, name)
        if step is not None and osp.isfile(path):
            found.append((step, osp.getmtime(path), path))
    return [p for _, _, p in sorted(found, reverse=True)]


def _problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None."""
    if not osp.isfile(path):
        return 'does not exist'
    try:
        verify_checkpoint_file(path)
    except CorruptCheckpointError as e:
        return f'is unreadable ({e})'
    return None


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` should load, or None for a fresh start
    (no ``last_checkpoint`` and no step checkpoint: mmengine starts from
    scratch).

    Raises:
        NoResumableCheckpointError: checkpoints exist but none is loadable.
    """
    record = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip() or None
    if named is not None:
        problem = _problem(named)
        if problem is None:
            return named
        why = f'{record} names {named}, which {problem}'
    elif osp.isfile(record):
        why = f'{record} is empty'
    else:
        why = f'{work_dir} has no last_checkpoint file'
    folders = [work_dir]
    if named is not None and osp.dirname(named) not in ('', work_dir):
        folders.insert(0, osp.dirname(named))  # a CheckpointHook out_dir
    candidates = [p for d in folders for p in step_checkpoints(d)]
    if not candidates:
        if named is None:
            return None
        raise NoResumableCheckpointError(
            f'Cannot resume: {why}, and {work_dir} holds no other '
            f'iter_N.pth / epoch_N.pth checkpoint. Start without --resume, '
            f'or pass a checkpoint with --cfg-options load_from=<file> '
            f'resume=True.')
    rejected = []
    for path in candidates:
        problem = _problem(path)
        if problem is None:
            warnings.warn(f'--resume: {why}; resuming from {path}, the '
                          f'newest loadable checkpoint in its folder.')
            return path
        rejected.append(f'{osp.basename(path)} {problem}')
    raise NoResumableCheckpointError(
        f'Cannot resume from {work_dir}: {why}, and none of its checkpoints '
        f'can be loaded ({"; ".join(rejected)}). Start without --resume.')
