"""Statistics for comparing two training recipes over the same seeds.

Every recipe ("arm") is trained once per seed; the method and the baseline
trained with the same seed form a pair. For paired values ``b_i`` (baseline)
and ``m_i`` (method), ``i = 1..n``:

    d_i      = m_i - b_i                      (per-seed difference)
    mean     = sum(d_i) / n
    std      = sqrt(sum((d_i - mean)^2) / (n - 1))       (sample std)
    ci95     = mean -/+ t_{0.975, n-1} * std / sqrt(n)   (Student t)
    p_value  = two-sided paired t-test (scipy.stats.ttest_rel)

``n < 2`` gives no spread, so ``diff_std``, ``ci95`` and ``p_value`` are
``None``. A zero spread (identical differences) gives a zero-width interval
and ``p_value`` ``None`` (the t statistic is undefined).
"""
import math
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import stats

__all__ = ['arm_stats', 'paired_stats']


def _as_vector(values, what):
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f'{what}: expected a non-empty 1-D sequence of '
                         f'numbers, got {values!r}')
    if not np.all(np.isfinite(arr)):
        raise ValueError(f'{what}: non-finite value in {values!r}')
    return arr


def arm_stats(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (``ddof=1``; ``None`` if n < 2)."""
    arr = _as_vector(values, 'arm_stats')
    n = int(arr.size)
    return dict(
        mean=float(arr.mean()),
        std=float(arr.std(ddof=1)) if n > 1 else None,
        n=n)


def paired_stats(baseline_vals: Sequence[float],
                 method_vals: Sequence[float],
                 confidence: float = 0.95) -> dict:
    """Paired difference ``method - baseline`` with a t confidence interval.

    Args:
        baseline_vals: metric of the baseline, one value per seed.
        method_vals: metric of the method for the same seeds, same order.
        confidence: two-sided confidence level of the interval (the key is
            ``ci95`` whatever the level, for a stable schema).

    Returns:
        dict with ``n``, ``per_seed_diff`` (list), ``diff_mean``,
        ``diff_std`` (sample std), ``diff_sem``, ``t_crit``, ``ci95``
        (``[lo, hi]``), ``p_value`` and ``confidence``.
    """
    b = _as_vector(baseline_vals, 'paired_stats: baseline_vals')
    m = _as_vector(method_vals, 'paired_stats: method_vals')
    if b.shape != m.shape:
        raise ValueError(f'paired_stats: {b.size} baseline values but '
                         f'{m.size} method values; pairs need one value of '
                         'each per seed')
    if not 0.0 < confidence < 1.0:
        raise ValueError(f'paired_stats: confidence must be in (0, 1), got '
                         f'{confidence}')
    d = m - b
    n = int(d.size)
    out = dict(n=n, per_seed_diff=d.tolist(), diff_mean=float(d.mean()),
               diff_std=None, diff_sem=None, t_crit=None, ci95=None,
               p_value=None, confidence=confidence)
    if n < 2:
        return out
    std = float(d.std(ddof=1))
    sem = std / math.sqrt(n)
    t_crit = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1))
    out.update(diff_std=std, diff_sem=sem, t_crit=t_crit,
               ci95=[out['diff_mean'] - t_crit * sem,
                     out['diff_mean'] + t_crit * sem])
    if std > 0:
        out['p_value'] = float(stats.ttest_rel(m, b).pvalue)
    return out
