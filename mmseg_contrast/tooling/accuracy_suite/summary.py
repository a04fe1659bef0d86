"""The suite JSON (``docs/results/accuracy_suite.json``): one entry per
comparison recomputed from its per-seed values, the results table of the
README, the discarded protocols' runs, and writing it all."""
import os
import os.path as osp

from ..compare import read_json, write_json
from ..paired_stats import arm_stats, paired_stats
from .figure import plot_suite
from .protocol import ARMS, COMPARISONS, DENSECL_PRETRAIN, DISCARDED

__all__ = [
    'suite_entry', 'ci_text', 'markdown_table', 'discarded_protocols',
    'write_suite'
]


def suite_entry(name, report, dataset):
    """The suite's entry for one comparison report (per-seed values
    first; the summary recomputed from them)."""
    comp = report['comparisons'][0]
    base, meth = comp['baseline_miou'], comp['method_miou']
    ps = paired_stats(base, meth)
    b_st, m_st = arm_stats(base), arm_stats(meth)
    return dict(
        name=name, baseline=comp['baseline'], method=comp['method'],
        dataset=dataset, seeds=comp['seeds'], baseline_miou=base,
        method_miou=meth, diff_mean=ps['diff_mean'], ci95=ps['ci95'],
        per_seed_diff=ps['per_seed_diff'],
        baseline_mean=b_st['mean'], baseline_std=b_st['std'],
        method_mean=m_st['mean'], method_std=m_st['std'],
        baseline_config=comp['baseline_config'],
        method_config=comp['method_config'],
        max_iters=report['protocol']['max_iters'],
        wall_s={r['arm']: r.get('train_s') for r in report['runs']
                if r['seed'] == comp['seeds'][0]})


def ci_text(c):
    """``[lo, hi]`` of a suite entry's 95 % CI, or why there is none."""
    ci = c.get('ci95')
    return '(1 seed: no CI)' if ci is None else f'[{ci[0]:+.2f}, {ci[1]:+.2f}]'


def _mean_std(c, arm):
    sd = c[f'{arm}_std']
    return f'{c[arm + "_mean"]:.2f}' + ('' if sd is None else f' ± {sd:.2f}')


def markdown_table(suite):
    """The README table of a suite JSON (numbers from its per-seed values)."""
    rows = ['| comparison | labelled | baseline (mean ± std) '
            '| method (mean ± std) | per-seed diff | paired diff [95 % CI] |',
            '|---|---|---|---|---|---|']
    for c in suite.get('comparisons', []):
        lab = c['dataset'].split('(')[1].split(' labelled')[0]
        diffs = ', '.join(f'{d:+.2f}' for d in c['per_seed_diff'])
        rows.append(
            f'| `{c["name"]}` | {lab} | {c["baseline"]} '
            f'{_mean_std(c, "baseline")} | '
            f'{c["method"]} {_mean_std(c, "method")} | '
            f'{diffs} | **{c["diff_mean"]:+.2f}** {ci_text(c)} |')
    return '\n'.join(rows)


def discarded_protocols(work_root):
    """Per-seed test mIoU of the discarded protocol's finished runs."""
    out = {}
    for name, d in DISCARDED.items():
        entry = dict(why=d['why'])
        for role in ('baseline', 'method'):
            arm, cfg = d[role]
            vals = {}
            for s in range(10):
                res = read_json(osp.join(work_root, arm, f'seed_{s}',
                                         'result.json'))
                if res and res.get('metrics', {}).get('mIoU') is not None:
                    vals[s] = res['metrics']['mIoU']
            entry[role] = dict(arm=arm, config=cfg, miou_by_seed=vals)
        out[name] = entry
    return out


def write_suite(entries, suite, seeds, work_dir, out, png):
    """Write the suite JSON ``out`` (``entries`` in the protocol's order,
    other keys of the previous ``suite`` kept, discarded protocols read from
    ``work_dir``) and its figure ``png``."""
    order = [n for n in COMPARISONS if n in entries]
    suite = dict(
        suite, comparisons=[entries[n] for n in order],
        discarded_protocols=discarded_protocols(osp.abspath(work_dir)),
        protocol=dict(
            doc='configs/bench/README.md', metric='mIoU (test split)',
            seeds=seeds,
            densecl_pretrain=DENSECL_PRETRAIN, arms=ARMS))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    write_json(out, suite)
    plot_suite(suite, png)
