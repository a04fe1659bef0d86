"""The comparison report of :func:`~.runner.run_comparison`: per-seed
values and summary per arm, the paired difference of every method arm to
the baseline (:mod:`mmseg_contrast.tooling.paired_stats`), saved as JSON and
printed as a summary."""
import os
import os.path as osp

from ..paired_stats import arm_stats, paired_stats
from .arms import CompareError
from .records import write_json

__all__ = ['metric_value', 'build_report', 'save_report', 'print_summary']

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


def print_summary(report):
    metric = report['metric']
    seeds = ', '.join(map(str, report['protocol']['seeds']))
    print(f'\n{metric} per seed ({seeds}):')
    for a in report['arms']:
        std = 'n/a' if a['std'] is None else f'{a["std"]:.2f}'
        vals = ' '.join(f'{v:.2f}' for v in a['values'])
        print(f'  {a["name"]:<20} {vals}   mean {a["mean"]:.2f} +- {std}')
    for c in report['comparisons']:
        ci = ('n/a (one seed)' if c['ci95'] is None else
              f'[{c["ci95"][0]:+.2f}, {c["ci95"][1]:+.2f}]')
        diffs = ' '.join(f'{d:+.2f}' for d in c['per_seed_diff'])
        print(f'  {c["method"]} - {c["baseline"]}: per seed {diffs}; mean '
              f'{c["diff_mean"]:+.2f}, {round(100 * c["confidence"])}% CI '
              f'{ci}')
