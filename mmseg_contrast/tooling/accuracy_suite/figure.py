"""Figure of the accuracy suite (``bench_accuracy.py``): one panel per
comparison with the per-seed mIoU of both arms (lines join a seed's pair)
and, on the right axis, the paired difference with its 95 % CI."""

__all__ = ['plot_suite']


def plot_suite(suite, out_png):
    """Draw ``suite``'s comparisons into ``out_png``; returns its path, or
    None (nothing drawn) when the suite has no comparison."""
    comps = suite.get('comparisons', [])
    if not comps:
        return None
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(comps), figsize=(3.6 * len(comps), 3.7),
                             squeeze=False)
    for ax, c in zip(axes[0], comps):
        b, m = c['baseline_miou'], c['method_miou']
        for s, (vb, vm) in enumerate(zip(b, m)):
            ax.plot([0, 1], [vb, vm], '-o', color=f'C{s}', alpha=0.7,
                    label=f'seed {c["seeds"][s]}')
        ax.plot([0, 1], [c['baseline_mean'], c['method_mean']], 'k_',
                markersize=30, mew=2, label='mean', zorder=5)
        ax.set_xticks([0, 1], [c['baseline'], c['method']])
        ax.set_xlim(-0.4, 1.9)
        ax.set_ylabel('test mIoU')
        ci = c.get('ci95')
        ax2 = ax.twinx()
        d = c['diff_mean']
        if ci is None:  # one seed: no interval
            ax2.plot([1.6], [d], 's', color='crimson')
        else:
            ax2.errorbar([1.6], [d], yerr=[[d - ci[0]], [ci[1] - d]],
                         fmt='s', color='crimson', capsize=6)
        ax2.axhline(0, color='crimson', lw=0.6, ls=':')
        ax2.set_ylabel('paired diff (95% CI)', color='crimson')
        span = ('(1 seed: no CI)' if ci is None
                else f'[{ci[0]:+.2f}, {ci[1]:+.2f}]')
        ax.set_title(f'{c["name"]}\n{d:+.2f} {span}', fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=len(labels),
               fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
