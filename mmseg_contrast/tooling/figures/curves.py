"""Training curves from mmengine JSON logs, several runs overlaid
(``tools/analysis/plot_curves.py``).

Reads ``vis_data/scalars.json`` (or ``vis_data/<timestamp>.json``): one JSON
object per line, training lines with ``loss``, ``decode.loss_ce``, ... and
validation lines with ``mIoU`` etc., all with a ``step``. A run is a JSON
file or a work dir (the newest ``vis_data/scalars.json`` under it is used).
"""
import glob
import json
import math
import os
import os.path as osp
import re

from .errors import FigureInputError

__all__ = ['find_log', 'load_log', 'smooth', 'plot_curves']


def find_log(path):
    """The JSON scalar log of a run (file or work dir)."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'No such log file or work dir: {path}')
    cands = glob.glob(osp.join(path, '**', 'vis_data', 'scalars.json'),
                      recursive=True)
    if not cands:
        cands = glob.glob(osp.join(path, '**', 'vis_data', '*.json'),
                          recursive=True)
    cands = [c for c in cands if osp.getsize(c) > 0]
    if not cands:
        raise FileNotFoundError(
            f'No non-empty vis_data/*.json log under {path} (was the run '
            f'started with a LocalVisBackend?)')
    return max(cands, key=osp.getmtime)


def load_log(path):
    """{key: ([steps], [values])} from an mmengine JSON-lines log."""
    series = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f'{path}:{n}: not a JSON line ({e})') from None
            step = rec.get('step', rec.get('iter'))
            if step is None:
                continue
            for k, v in rec.items():
                if k in ('step', 'iter', 'epoch') or not isinstance(
                        v, (int, float)):
                    continue
                xs, ys = series.setdefault(k, ([], []))
                xs.append(step)
                ys.append(float(v))
    if not series:
        raise ValueError(f'{path}: no scalars found')
    return series


def smooth(ys, w):
    if w <= 1 or len(ys) < w:
        return ys
    out, acc = [], 0.0
    for i, y in enumerate(ys):
        acc += y
        if i >= w:
            acc -= ys[i - w]
        out.append(acc / min(i + 1, w))
    return out


def plot_curves(runs, legend=None, key_regex='loss', metrics=('mIoU', ),
                smooth_window=1, out='curves.png', title=None):
    """Overlay the curves of ``runs`` (JSON logs or work dirs) in ``out``.

    One panel per training scalar matching ``key_regex`` (``'loss'``
    first, then sorted) and per validation metric of ``metrics`` found in
    the logs; losses smoothed with a ``smooth_window``-point moving average.
    Prints each run's final metrics and the saved file.

    Returns:
        list[str]: the plotted keys, in panel order.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = legend or [osp.basename(osp.normpath(r)) for r in runs]
    if len(names) != len(runs):
        raise FigureInputError(f'--legend needs {len(runs)} names, got '
                               f'{len(names)}')
    logs = [load_log(find_log(r)) for r in runs]
    pat = re.compile(key_regex)
    loss_keys = sorted({k for s in logs for k in s if pat.search(k)},
                       key=lambda k: (k != 'loss', k))
    metric_keys = [m for m in metrics if any(m in s for s in logs)]
    keys = loss_keys + metric_keys
    if not keys:
        raise FigureInputError(f'no key matches --keys {key_regex!r} or '
                               f'--metrics {metrics} in the logs')
    ncol = min(3, len(keys))
    nrow = math.ceil(len(keys) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.3 * ncol, 3.0 * nrow),
                             squeeze=False)
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, key in zip(axes.flat, keys):
        is_metric = key in metric_keys
        for i, (name, s) in enumerate(zip(names, logs)):
            if key not in s:
                continue
            xs, ys = s[key]
            ys = ys if is_metric else smooth(ys, smooth_window)
            ax.plot(xs, ys, marker='o' if is_metric else None, ms=3,
                    lw=1.2, color=colors[i % len(colors)], label=name)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat:  # a run may lack the first key
        h, lb = ax.get_legend_handles_labels()
        if len(h) > len(handles):
            handles, labels = h, lb
    fig.legend(handles, labels, loc='lower center', ncol=len(names),
               fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    for name, s in zip(names, logs):
        last = {m: s[m][1][-1] for m in metric_keys if m in s}
        print(f'{name}: ' + ', '.join(f'final {m} {v:.2f}'
                                      for m, v in last.items()))
    print(f'saved {out} ({len(keys)} panels: {", ".join(keys)})')
    return keys
