"""tools/run_demo.py: the baseline and the method side by side (metric and
progress parsing, the printed table, and a 2-iteration end-to-end run)."""
import json
import os.path as osp

import pytest

from mmseg_contrast.tooling import demo
from mmseg_contrast.tooling.data import prepare_fashion_canvas

from helpers.tool_loading import load_tool

LOG = (
    '11/24 05:47:20 - mmengine - INFO - Iter(val) [32/32]    aAcc: 74.0100  '
    'mIoU: 4.6300  mAcc: 6.2500  data_time: 0.0178  time: 0.2426\n'
    '11/24 05:49:20 - mmengine - INFO - Iter(test) [32/32]    aAcc: 90.5000'
    '  mIoU: 51.2500  mAcc: 60.0000  data_time: 0.0178  time: 0.2426\n')
TRAIN_LINE = ('12/06 10:08:02 - mmengine - INFO - Iter(train) [ 50/400]  '
              'base_lr: 1.0e-02 lr: 9.0e-03  eta: 0:02:49  time: 0.48')


def test_parse_metrics_takes_last():
    assert demo.parse_metrics(LOG) == dict(aAcc=90.5, mIoU=51.25, mAcc=60.0)
    assert demo.parse_metrics('no metrics here') == {}


def test_parse_progress():
    assert demo.parse_progress(TRAIN_LINE) == (50, 400, 169)
    assert demo.parse_progress(
        'Iter(train) [1/9]  eta: 1 day, 2:00:05  time: 1') == (1, 9, 93605)
    assert demo.parse_progress(LOG) is None


def test_progress_line_gives_both_etas(capsys):
    demo.Progress('1/2 CE only', 1)(TRAIN_LINE)
    out = capsys.readouterr().out
    assert 'iteration 50/400' in out and 'this run 2:49 left' in out
    assert 'demo ' in out


def test_default_pair_is_the_suite_contrast_comparison():
    run_demo = load_tool('run_demo.py')
    assert run_demo.parse_args([]).method == 'contrast'
    for pair in list(demo.PAIRS.values()) + [demo.DENSECL_PAIR]:
        for cfg in (pair.baseline, pair.method):
            assert osp.isfile(osp.join(demo.REPO, cfg)), cfg
        assert demo.suite_result(pair.comparison) is not None
    for pair in demo.PAIRS.values():  # exactly the suite's arms
        rec = demo.suite_result(pair.comparison)
        assert (rec['baseline_config'], rec['method_config']) == (
            pair.baseline, pair.method)


def test_summary_lines_name_the_caveat_and_the_suite():
    summary = dict(
        title='t', seed=0, evaluated_on='x',
        baseline=dict(name='CE only', mIoU=14.75, seconds=200.0,
                      config='a.py'),
        method=dict(name='+ pixel contrast', mIoU=16.15, seconds=210.0,
                    config='b.py'),
        diff=1.4, suite=demo.suite_summary('contrast_vs_ce'))
    text = '\n'.join(demo.summary_lines(summary))
    assert '14.75' in text and '16.15' in text and '+1.40' in text
    assert 'anecdote' in text and 'contrast_vs_ce' in text
    assert '3 seeds' in text and '95 % CI' in text


@pytest.mark.timeout(900)
def test_run_demo_end_to_end(tmp_path, capsys):
    prepare_fashion_canvas()
    run_demo = load_tool('run_demo.py')
    opts = [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        'val_dataloader.dataset.indices=4',
        'test_dataloader.dataset.indices=4',
    ]
    summary = run_demo.main(['--work-dir', str(tmp_path / 'demo'),
                             '--seed', '3', '--quiet', '--skip-prepare',
                             '--cfg-options'] + opts)
    out = capsys.readouterr().out
    with open(tmp_path / 'demo' / 'summary.json') as f:
        saved = json.load(f)
    for key in ('baseline', 'method'):
        assert 0.0 <= saved[key]['mIoU'] <= 100.0
        assert saved[key]['seconds'] > 0 and saved[key]['config']
    assert saved['diff'] == round(saved['method']['mIoU'] -
                                  saved['baseline']['mIoU'], 2)
    assert saved['seed'] == 3 and saved == summary
    assert osp.isfile(saved['figure'])
    assert 'iteration 1/2' in out  # progress, also with --quiet
    assert '+ pixel contrast' in out and 'anecdote' in out
    with open(tmp_path / 'demo' / 'method' / 'train.log') as f:
        assert 'seed: 3' in f.read()
