"""Schedule overrides: the cfg-options that shorten or lengthen an
iteration-based schedule consistently (``compare_runs.py --max-iters``)."""
import math
from typing import List, Optional

from .arms import CompareError, option_list

__all__ = ['schedule_overrides']


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
