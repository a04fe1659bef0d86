"""tools/analysis/compare_runs.py (:mod:`mmseg_contrast.tooling.compare`):
the paired statistics against a hand
computation, the schedule overrides and reuse decisions, and one end-to-end
run of the CLI (2 arms x 2 seeds x 2 iterations of the tiny VOC config):
report fields, CI from the per-seed values, a rerun that reuses every run,
and the one-message errors. No accuracy assertions."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from scipy import stats

from mmseg_contrast.tooling import compare as lib
from mmseg_contrast.tooling.paired_stats import arm_stats, paired_stats

from helpers.tool_helpers import REPO
from helpers.tool_loading import load_tool

compare = load_tool('analysis/compare_runs.py')
TINY = osp.join(REPO, 'tests', 'data', 'configs', 'tiny_fcn_voc_mini.py')


def test_paired_stats_matches_hand_computation():
    b, m = [40.0, 42.5, 41.0], [41.5, 42.0, 43.5]
    d = [1.5, -0.5, 2.5]
    mean = sum(d) / 3
    std = math.sqrt(sum((x - mean)**2 for x in d) / 2)
    half = stats.t.ppf(0.975, 2) * std / math.sqrt(3)
    p = 2 * stats.t.sf(abs(mean / (std / math.sqrt(3))), 2)
    r = paired_stats(b, m)
    assert r['n'] == 3 and r['per_seed_diff'] == pytest.approx(d)
    assert r['diff_mean'] == pytest.approx(mean)
    assert r['diff_std'] == pytest.approx(std)
    assert r['ci95'] == pytest.approx([mean - half, mean + half])
    assert r['p_value'] == pytest.approx(p)
    assert arm_stats(b)['std'] == pytest.approx(1.2583057, rel=1e-6)
    one = paired_stats([1.0], [2.0])
    assert one['diff_mean'] == 1.0 and one['ci95'] is None
    flat = paired_stats([1.0, 2.0], [2.0, 3.0])
    assert flat['ci95'] == pytest.approx([1.0, 1.0])
    assert flat['p_value'] is None
    with pytest.raises(ValueError, match='per seed'):
        paired_stats([1.0, 2.0], [1.0])


def test_option_list_formats_and_fills_seed():
    assert lib.option_list({'a.b': 1, 'c': [1, 2], 'd': (3, 'x')}) == [
        'a.b=1', 'c=[1,2]', 'd=(3,x)']
    assert lib.option_list(['load_from=w/s{seed}.pth'], seed=4) == [
        'load_from=w/s4.pth']
    with pytest.raises(lib.CompareError, match='KEY=VALUE'):
        lib.option_list(['no_value'])


def test_schedule_overrides_rescale_consistently():
    cfg = Config(dict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=1000,
                       val_interval=200),
        param_scheduler=[
            dict(type='LinearLR', by_epoch=False, begin=0, end=100),
            dict(type='PolyLR', by_epoch=False, begin=100, end=1000),
            dict(type='StepLR', by_epoch=True, step_size=3)
        ],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=50),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=1000)),
        custom_hooks=[dict(type='ContrastWarmupHook', warmup_iters=125)]))
    opts = lib.parse_options(lib.schedule_overrides(cfg, max_iters=300))
    assert opts == {
        'train_cfg.max_iters': 300, 'train_cfg.val_interval': 60,
        'param_scheduler.0.begin': 0, 'param_scheduler.0.end': 30,
        'param_scheduler.1.begin': 30, 'param_scheduler.1.end': 300,
        'default_hooks.checkpoint.interval': 300,
        'default_hooks.logger.interval': 50,
        'custom_hooks.0.warmup_iters': 38}
    opts = lib.parse_options(
        lib.schedule_overrides(cfg, max_iters=2, val_interval=2))
    assert opts['param_scheduler.0.end'] == 1
    assert opts['param_scheduler.1.end'] == 2
    assert opts['default_hooks.logger.interval'] == 2
    assert lib.schedule_overrides(cfg) == []
    epochs = Config(dict(train_cfg=dict(type='EpochBasedTrainLoop',
                                        max_epochs=3)))
    with pytest.raises(lib.CompareError, match='iteration-based'):
        lib.schedule_overrides(epochs, max_iters=10)


def test_plan_run_reuse_resume_and_mismatch(tmp_path):
    sig, fields = lib.make_signature(TINY, 0, ['a=1'], [], 1, [])
    d = str(tmp_path)
    assert lib.plan_run(d, sig, fields)['action'] == 'train'
    state = dict(signature=sig, signature_fields=fields, state='training')
    lib.write_json(osp.join(d, 'run.json'), state)
    (tmp_path / 'iter_1.pth').write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_1.pth'))
    plan = lib.plan_run(d, sig, fields)
    assert plan['action'] == 'resume'
    assert plan['checkpoint'] == str(tmp_path / 'iter_1.pth')
    lib.write_json(osp.join(d, 'run.json'),
                   dict(state, checkpoint='iter_1.pth'))
    assert lib.plan_run(d, sig, fields)['action'] == 'test'
    lib.write_json(osp.join(d, 'result.json'),
                   dict(state, checkpoint='iter_1.pth', metrics={}))
    assert lib.plan_run(d, sig, fields)['action'] == 'skip'
    sig_t, fields_t = lib.make_signature(TINY, 0, ['a=1'], [], 1, ['b=2'])
    assert lib.plan_run(d, sig_t, fields_t)['action'] == 'test'
    sig2, fields2 = lib.make_signature(TINY, 0, ['a=2'], [], 1, [])
    plan = lib.plan_run(d, sig2, fields2)
    assert plan['action'] == 'mismatch'
    assert plan['changes'] == ['cfg_options: a: 1 -> 2']
    sig3, fields3 = lib.make_signature(TINY, 1, ['b=1'], ['--amp'], 1, [])
    assert lib.plan_run(d, sig3, fields3)['changes'] == [
        'cfg_options: -a=1; +b=1', "seed: 0 -> 1",
        "train_args: +--amp"]


def _data_opts(root):
    return [f'{k}.dataset.data_root={root}'
            for k in ('train_dataloader', 'val_dataloader',
                      'test_dataloader')]


def _cli(work, root, *extra):
    return [TINY, TINY, '--names', 'ce', 'lr02', '--seeds', '0', '1',
            '--max-iters', '2', '--work-dir', str(work), '--cfg-options',
            *_data_opts(root), '--cfg-options-for', 'lr02',
            'optim_wrapper.optimizer.lr=0.02',
            'train_dataloader.sampler.seed={seed}', *extra]


@pytest.fixture(scope='module')
def compared(tmp_path_factory, voc_mini_root):
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    root = osp.abspath(voc_mini_root)
    work = tmp_path_factory.mktemp('compare')
    assert compare.main(_cli(work, root)) == 0
    with open(work / 'comparison.json') as f:
        return work, root, json.load(f)


def test_report_fields_and_ci_from_per_seed_values(compared):
    work, _, rep = compared
    assert rep['metric'] == 'mIoU'
    assert rep['protocol']['seeds'] == [0, 1]
    assert rep['protocol']['max_iters'] == {'ce': 2, 'lr02': 2}
    (c, ) = rep['comparisons']
    assert (c['name'], c['baseline'], c['method']) == ('lr02-vs-ce', 'ce',
                                                       'lr02')
    assert c['dataset'] == 'PascalVOCDataset' and c['seeds'] == [0, 1]
    runs = {(r['arm'], r['seed']): r for r in rep['runs']}
    assert len(runs) == 4
    assert c['baseline_miou'] == [runs[('ce', s)]['metrics']['mIoU']
                                  for s in (0, 1)]
    assert c['method_miou'] == [runs[('lr02', s)]['metrics']['mIoU']
                                for s in (0, 1)]
    d = [m - b for b, m in zip(c['baseline_miou'], c['method_miou'])]
    mean = sum(d) / 2
    half = stats.t.ppf(0.975, 1) * abs(d[0] - d[1]) / 2
    assert c['per_seed_diff'] == pytest.approx(d)
    assert c['diff_mean'] == pytest.approx(mean)
    if half > 0:
        assert c['ci95'] == pytest.approx([mean - half, mean + half])
    for key in ('baseline_mean', 'baseline_std', 'method_mean', 'method_std',
                'diff_std', 'p_value'):
        assert key in c
    for (arm, seed), r in runs.items():
        assert r['status'] == 'ran' and r['checkpoint'] == 'iter_2.pth'
        assert f'randomness.seed={seed}' in r['cfg_options']
        assert 'train_cfg.max_iters=2' in r['cfg_options']
        assert ('optim_wrapper.optimizer.lr=0.02' in r['cfg_options']) == (
            arm == 'lr02')
        if arm == 'lr02':
            assert f'train_dataloader.sampler.seed={seed}' in r['cfg_options']
        assert osp.isfile(osp.join(r['run_dir'], 'result.json'))
        assert r['run_dir'] == str(work / arm / f'seed_{seed}')
    with open(work / 'comparison.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_rerun_reuses_finished_runs(compared, capsys):
    work, root, rep = compared
    results = [osp.join(r['run_dir'], 'result.json') for r in rep['runs']]
    mtimes = [os.stat(p).st_mtime_ns for p in results]
    capsys.readouterr()
    assert compare.main(_cli(work, root)) == 0
    out = capsys.readouterr().out
    assert '4 finished (reused), 0 to run' in out
    assert out.count('finished run found, skipped') == 4
    assert 'train + test' not in out
    assert [os.stat(p).st_mtime_ns for p in results] == mtimes
    with open(work / 'comparison.json') as f:
        again = json.load(f)
    assert again['comparisons'][0]['ci95'] == rep['comparisons'][0]['ci95']
    assert {r['status'] for r in again['runs']} == {'reused'}
    # other settings in the same work dir: one error, nothing run
    assert compare.main(_cli(work, root, '--max-iters', '3')) == 1
    err = capsys.readouterr().err
    assert 'hold runs with other settings' in err and '--overwrite' in err
    assert 'train_cfg.max_iters: 2 -> 3' in err


def test_broken_config_one_clear_error(tmp_path, voc_mini_root, capsys):
    broken = tmp_path / 'broken_head.py'
    broken.write_text(f"_base_ = ['{TINY}']\n"
                      "model = dict(decode_head=dict(type='NoSuchHead'))\n")
    rc = compare.main([
        str(broken), TINY, '--seeds', '0', '--max-iters', '1',
        '--work-dir', str(tmp_path / 'wd'), '--cfg-options',
        *_data_opts(osp.abspath(voc_mini_root))])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count('compare_runs: error: ') == 1
    assert str(broken) in err and 'the train stage' in err
    assert 'error: KeyError' in err and 'NoSuchHead' in err
    assert osp.join(str(tmp_path / 'wd'), 'broken_head', 'seed_0',
                    'train.log') in err
    assert not (tmp_path / 'wd' / 'comparison.json').exists()


def test_missing_config_exits_with_one_line(tmp_path):
    # importing mmseg_contrast (the tool's library lives in it) makes
    # mmcv-lite warn about its missing ops: not the tool's output
    proc = subprocess.run(
        [sys.executable, '-W', 'ignore::UserWarning',
         osp.join(REPO, 'tools', 'analysis', 'compare_runs.py'), TINY,
         str(tmp_path / 'nope.py'), '--work-dir', str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"compare_runs: error: arm 'nope': config {tmp_path / 'nope.py'} "
        'does not exist']
