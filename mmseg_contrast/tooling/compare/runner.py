"""Train + test every (arm, seed) of a comparison and build its report:
:func:`run_comparison`, the engine of ``tools/analysis/compare_runs.py`` and
of the accuracy suite.

What is trained and evaluated where: ``tools/analysis/compare_runs.py``;
finished runs are reused, interrupted ones resumed (:mod:`.records`)::

    from mmseg_contrast.tooling.compare import ArmSpec, run_comparison
    report = run_comparison(ArmSpec('ce', CFG), [ArmSpec('x', CFG2)],
                            seeds=[0, 1, 2], work_root='work_dirs/cmp')
"""
import datetime
import os
import os.path as osp
import time

from .arms import CompareError, load_config, option_list, parse_options
from .launch import REPO, git_version, launch_prefix, run_logged
from .records import (
    display_path,
    list_test_jsons,
    make_signature,
    plan_run,
    read_test_metrics,
    write_json,
)
from .report import build_report, metric_value, save_report
from .report_figure import plot_report
from .schedule import schedule_overrides

__all__ = ['run_comparison']


def _say(msg):
    print(f'[compare] {msg}', flush=True)


def _fmt_s(secs):
    secs = int(round(secs))
    h, rem = divmod(secs, 3600)
    return (f'{h}h{rem // 60:02d}m' if h else
            f'{rem // 60}m{rem % 60:02d}s' if rem >= 60 else f'{rem}s')


def _now():
    return datetime.datetime.now().isoformat(timespec='seconds')


def _prepare(arms, seeds, work_root, max_iters, val_interval, common,
             test_common, train_extra, nproc, overwrite, log):
    """Plan every run; returns (jobs, per-arm info). Mismatching run dirs
    raise (or are moved aside with ``overwrite``) before anything runs."""
    info, jobs, bad = {}, [], []
    for arm in arms:
        cfg = load_config(arm.config,
                          common + option_list(arm.cfg_options, seeds[0]))
        sched = schedule_overrides(cfg, max_iters, val_interval)
        cfg.merge_from_dict(parse_options(sched + test_common))
        ds = cfg.get('test_dataloader', {}).get('dataset', {})
        info[arm.name] = dict(
            sched=sched, dataset=ds.get('type'), data_root=ds.get('data_root'),
            max_iters=cfg.get('train_cfg', {}).get('max_iters'),
            train_args=list(arm.train_args) + [
                a for a in train_extra if a not in arm.train_args])
    for seed in seeds:
        for arm in arms:
            a = info[arm.name]
            train_opts = (a['sched'] + common
                          + option_list(arm.cfg_options, seed)
                          + [f'randomness.seed={seed}'])
            test_opts = option_list(test_common, seed)
            sig, fields = make_signature(arm.config, seed, train_opts,
                                         a['train_args'], nproc, test_opts)
            run_dir = osp.join(work_root, arm.name, f'seed_{seed}')
            plan = plan_run(run_dir, sig, fields)
            if plan['action'] == 'mismatch':
                bad.append((run_dir, plan['changes']))
            jobs.append(dict(arm=arm, seed=seed, run_dir=run_dir, sig=sig,
                             fields=fields, plan=plan, train_opts=train_opts,
                             test_opts=test_opts))
    if bad and not overwrite:
        lines = '\n'.join(f'  {d}:\n    ' + '\n    '.join(c) for d, c in bad)
        raise CompareError(
            f'{len(bad)} run dir(s) hold runs with other settings:\n{lines}\n'
            'Use another --work-dir, or --overwrite to move them aside '
            '(renamed *.replaced-<time>) and rerun.')
    for run_dir, _ in bad:
        dst = f'{run_dir}.replaced-{time.strftime("%Y%m%d-%H%M%S")}'
        os.rename(run_dir, dst)
        log(f'moved {run_dir} aside to {dst}')
    for job in jobs:
        if job['plan']['action'] == 'mismatch':
            job['plan'] = dict(action='train')
    return jobs, info


def _execute(job, info, prefix, launcher_args, metric, echo, git):
    """Train (or resume) and test one run; returns its result record."""
    arm, seed, run_dir = job['arm'], job['seed'], job['run_dir']
    plan, a = job['plan'], info[job['arm'].name]
    cfg_path = osp.abspath(arm.config)
    os.makedirs(run_dir, exist_ok=True)
    state = dict(signature=job['sig'], signature_fields=job['fields'],
                 state='training', started_at=_now())
    train_s, resumed = None, plan['action'] == 'resume'
    if plan['action'] in ('train', 'resume'):
        write_json(osp.join(run_dir, 'run.json'), state)
        extra = (['--resume'] if resumed else [])
        opts = job['train_opts'] + (
            [f'load_from={plan["checkpoint"]}'] if resumed else [])
        cmd = prefix + [osp.join(REPO, 'tools', 'train.py'), cfg_path,
                        '--work-dir', run_dir, *a['train_args'], *extra,
                        '--cfg-options', *opts] + launcher_args
        t0 = time.perf_counter()
        run_logged(cmd, osp.join(run_dir, 'train.log'), 'train', arm.name,
                   arm.config, echo)
        train_s = time.perf_counter() - t0
        marker = osp.join(run_dir, 'last_checkpoint')
        if not osp.isfile(marker):
            raise CompareError(f'arm {arm.name!r}: train wrote no checkpoint '
                               f'({marker} missing), config {arm.config}')
        with open(marker) as f:
            ckpt = osp.relpath(f.read().strip(), run_dir)
        state.update(state='trained', checkpoint=ckpt, train_s=train_s,
                     resumed=resumed, trained_at=_now())
        write_json(osp.join(run_dir, 'run.json'), state)
    else:  # 'test': reuse the training run
        ckpt = plan['checkpoint']
        train_s = plan['record'].get('train_s')
        resumed = plan['record'].get('resumed', False)
    test_dir = osp.join(run_dir, 'test')
    known = list_test_jsons(test_dir)
    cmd = prefix + [osp.join(REPO, 'tools', 'test.py'), cfg_path,
                    osp.join(run_dir, ckpt), '--work-dir', test_dir,
                    '--cfg-options', *job['train_opts'],
                    *job['test_opts']] + launcher_args
    t0 = time.perf_counter()
    run_logged(cmd, osp.join(run_dir, 'test.log'), 'test', arm.name,
               arm.config, echo)
    test_s = time.perf_counter() - t0
    metrics, path = read_test_metrics(test_dir, known)
    if metrics is None:
        raise CompareError(f'arm {arm.name!r}: tools/test.py wrote no metrics '
                           f'json under {test_dir}; see '
                           f'{osp.join(run_dir, "test.log")}')
    record = dict(
        arm=arm.name, seed=seed, config=display_path(arm.config),
        cfg_options=job['train_opts'], test_cfg_options=job['test_opts'],
        train_args=a['train_args'], max_iters=a['max_iters'],
        metrics=metrics, metrics_file=osp.relpath(path, run_dir),
        run_dir=run_dir, checkpoint=ckpt, train_s=train_s, test_s=test_s,
        resumed=resumed, git=git, finished_at=_now(),
        signature=job['sig'], signature_fields=job['fields'])
    metric_value(record, metric)  # fail now if the metric is missing
    write_json(osp.join(run_dir, 'result.json'), record)
    return record


def run_comparison(baseline, methods, seeds, work_root, *, max_iters=None,
                   val_interval=None, cfg_options=None, test_cfg_options=None,
                   metric='mIoU', launcher='none', nproc=1, port=29500,
                   srun_args='', amp=False, overwrite=False, echo=False,
                   confidence=0.95, dataset=None, out_json=None, out_png=None,
                   log=_say):
    """Train + test every (arm, seed), reuse finished runs, return the
    report (see :func:`~.report.build_report`); also written to
    ``out_json`` / ``out_png`` (default ``work_root/comparison.{json,png}``;
    ``False`` skips one).

    ``cfg_options`` go to every arm's train and test runs,
    ``test_cfg_options`` only to tools/test.py (e.g. a held-out split);
    ``{seed}`` in any option is replaced by the run's seed.
    """
    arms = [baseline, *methods]
    seeds = [int(s) for s in seeds]
    if not methods:
        raise CompareError('give at least one method arm besides the '
                           'baseline')
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise CompareError(f'arm names repeat: {names}; give distinct names')
    if not seeds or len(set(seeds)) != len(seeds):
        raise CompareError(f'seeds must be distinct and non-empty: {seeds}')
    for a in arms:
        if not osp.isfile(a.config):
            raise CompareError(f'arm {a.name!r}: config {a.config} does not '
                               'exist')
    prefix = launch_prefix(launcher, nproc, port, srun_args)
    launcher_args = [] if launcher == 'none' else ['--launcher', launcher]
    work_root = osp.abspath(work_root)
    common = option_list(cfg_options)
    jobs, info = _prepare(arms, seeds, work_root, max_iters, val_interval,
                          common, option_list(test_cfg_options),
                          ['--amp'] if amp else [], nproc, overwrite, log)
    git = git_version()
    total = len(jobs)
    reused = sum(j['plan']['action'] == 'skip' for j in jobs)
    log(f'{total} runs ({len(arms)} arms x {len(seeds)} seeds): {reused} '
        f'finished (reused), {total - reused} to run; work dir {work_root}')
    records, times = {}, []
    t_all = time.perf_counter()
    for i, job in enumerate(jobs, 1):
        tag = f'{job["arm"].name} seed {job["seed"]}'
        act = job['plan']['action']
        if act == 'skip':
            rec = dict(job['plan']['result'], status='reused',
                       run_dir=job['run_dir'])
            log(f'[{i}/{total}] {tag}: finished run found, skipped '
                f'({metric} {metric_value(rec, metric):.2f})')
        else:
            ck = osp.basename(job['plan'].get('checkpoint', ''))
            what = dict(train='train + test', test='test only (trained)',
                        resume=f'resume from {ck} + test')[act]
            log(f'[{i}/{total}] {tag}: {what} -> {job["run_dir"]}')
            t0 = time.perf_counter()
            rec = _execute(job, info, prefix, launcher_args, metric, echo,
                           git)
            rec['status'] = dict(train='ran', resume='resumed',
                                 test='retested')[act]
            times.append(time.perf_counter() - t0)
            left = sum(j['plan']['action'] != 'skip' for j in jobs[i:])
            eta = (f'ETA {_fmt_s(left * sum(times) / len(times))}'
                   if left else 'all done')
            log(f'[{i}/{total}] {tag}: {metric} '
                f'{metric_value(rec, metric):.2f} in {_fmt_s(times[-1])}; '
                f'{i} done, {total - i} left, {eta}')
        records[(job['arm'].name, job['seed'])] = rec
    a0 = info[baseline.name]
    protocol = dict(
        seeds=seeds, metric=metric, confidence=confidence,
        max_iters={n: info[n]['max_iters'] for n in names},
        max_iters_override=max_iters, val_interval_override=val_interval,
        cfg_options=common, test_cfg_options=option_list(test_cfg_options),
        arms=[dict(name=a.name, config=display_path(a.config),
                   cfg_options=option_list(a.cfg_options),
                   train_args=info[a.name]['train_args']) for a in arms],
        test_dataset=a0['dataset'], test_data_root=a0['data_root'],
        launcher=launcher, nproc=nproc, work_root=work_root, git=git,
        runs_total=total, runs_reused=reused,
        session_s=time.perf_counter() - t_all, date=_now())
    report = build_report(arms, seeds, records, metric, protocol,
                          confidence, dataset or a0['dataset'])
    out_json = osp.join(work_root, 'comparison.json') \
        if out_json is None else out_json
    out_png = osp.join(work_root, 'comparison.png') \
        if out_png is None else out_png
    if out_json:
        save_report(report, out_json)
        log(f'report: {out_json}')
    if out_png:
        plot_report(report, out_png)
        log(f'figure: {out_png}')
    return report
