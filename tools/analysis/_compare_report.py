"""Report of ``compare_runs.py``: the comparison JSON and its figure."""
import os
import os.path as osp

from _compare_lib import CompareError, write_json

# run-record keys that go into the report's ``runs`` list
_RUN_KEYS = ('arm', 'seed', 'status', 'config', 'cfg_options',
             'test_cfg_options', 'train_args', 'max_iters', 'metrics',
             'run_dir', 'checkpoint', 'train_s', 'test_s', 'resumed', 'git',
             'finished_at')


def metric_value(record, metric):
    metrics = record.get('metrics') or {}
    if metric not in metrics:
        raise CompareError(
            f'run {record.get("run_dir")}: metric {metric!r} not in the test '
            f'results {sorted(metrics)}; choose one with --metric')
    return float(metrics[metric])


def build_report(arms, seeds, records, metric, protocol, confidence=0.95,
                 dataset=None):
    """The comparison report.

    Args:
        arms: ``ArmSpec`` list, the baseline first.
        seeds: the seeds, in the order of the per-seed lists.
        records: ``{(arm name, seed): result record}`` of finished runs.
        metric: metric key of the test results (e.g. ``'mIoU'``).
        protocol: dict recorded as is (seeds, schedule, launcher, ...).
        dataset: dataset label of the comparisons.
    """
    from mmseg_contrast.tooling.paired_stats import arm_stats, paired_stats
    key = metric.lower()
    values = {a.name: [metric_value(records[(a.name, s)], metric)
                       for s in seeds] for a in arms}
    arm_rows = []
    for a in arms:
        st = arm_stats(values[a.name])
        arm_rows.append(dict(name=a.name, config=records[(a.name, seeds[0])]
                             ['config'], values=values[a.name], **st))
    base = arms[0]
    comparisons = []
    for m in arms[1:]:
        b_st, m_st = arm_stats(values[base.name]), arm_stats(values[m.name])
        ps = paired_stats(values[base.name], values[m.name], confidence)
        comparisons.append(dict(
            name=f'{m.name}-vs-{base.name}', baseline=base.name,
            method=m.name, dataset=dataset, metric=metric, seeds=list(seeds),
            baseline_config=arm_rows[0]['config'],
            method_config=records[(m.name, seeds[0])]['config'],
            **{f'baseline_{key}': values[base.name],
               f'method_{key}': values[m.name]},
            baseline_mean=b_st['mean'], baseline_std=b_st['std'],
            method_mean=m_st['mean'], method_std=m_st['std'], **ps))
    runs = [{k: records[(a.name, s)].get(k) for k in _RUN_KEYS}
            for s in seeds for a in arms]
    return dict(metric=metric, protocol=protocol, arms=arm_rows,
                comparisons=comparisons, runs=runs)


def save_report(report, out_json):
    os.makedirs(osp.dirname(osp.abspath(out_json)), exist_ok=True)
    write_json(out_json, report)


def plot_report(report, out_png):
    """Left: per-seed values of every arm, a line per seed, arm means.
    Right: per-seed paired differences to the baseline, their mean and the
    confidence interval."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    metric = report['metric']
    arms = report['arms']
    comps = report['comparisons']
    seeds = comps[0]['seeds']
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(4 + 1.4 * (len(arms) + len(comps)), 4.2),
        gridspec_kw=dict(width_ratios=[len(arms), max(1, len(comps))]))
    xs = list(range(len(arms)))
    for j, seed in enumerate(seeds):
        c = colors[j % len(colors)]
        ax1.plot(xs, [a['values'][j] for a in arms], '-o', color=c,
                 alpha=0.7, label=f'seed {seed}')
    ax1.plot(xs, [a['mean'] for a in arms], 'D', color='black', ms=8,
             label='mean', zorder=5)
    ax1.set_xticks(xs, [a['name'] for a in arms])
    ax1.set_xlim(-0.5, len(arms) - 0.5)
    ax1.set_ylabel(metric)
    ax1.set_title(f'{metric} per seed')
    ax1.legend(fontsize='small')

    level = int(round(100 * comps[0]['confidence']))
    for i, c in enumerate(comps):
        for j, d in enumerate(c['per_seed_diff']):
            ax2.plot(i, d, 'o', color=colors[j % len(colors)], alpha=0.7)
        if c['ci95'] is not None:
            lo, hi = c['ci95']
            yerr = [[c['diff_mean'] - lo], [hi - c['diff_mean']]]
            ax2.errorbar(i, c['diff_mean'], yerr=yerr, fmt='D',
                         color='black', ms=8, capsize=8, zorder=5)
        else:
            ax2.plot(i, c['diff_mean'], 'D', color='black', ms=8)
    ax2.axhline(0.0, color='gray', ls='--', lw=1)
    ax2.set_xticks(range(len(comps)),
                   [f'{c["method"]}\n- {c["baseline"]}' for c in comps])
    ax2.set_xlim(-0.5, len(comps) - 0.5)
    ax2.set_ylabel(f'paired difference ({metric})')
    ax2.set_title(f'paired difference: mean, {level}% CI\n'
                  f'(n={len(seeds)} seeds)', fontsize='medium')
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
