"""Figure of a comparison report (``comparison.png``)."""
import os
import os.path as osp

__all__ = ['plot_report']


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
