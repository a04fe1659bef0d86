"""tools/run_demo.py: metric parsing and a 2-iteration end-to-end run."""
import json
import os.path as osp

from helpers.tool_loading import load_tool

LOG = (
    '11/24 05:47:20 - mmengine - INFO - Iter(val) [32/32]    aAcc: 74.0100  '
    'mIoU: 4.6300  mAcc: 6.2500  data_time: 0.0178  time: 0.2426\n'
    '11/24 05:49:20 - mmengine - INFO - Iter(test) [32/32]    aAcc: 90.5000'
    '  mIoU: 51.2500  mAcc: 60.0000  data_time: 0.0178  time: 0.2426\n')


def test_parse_metrics_takes_last():
    run_demo = load_tool('run_demo.py')
    assert run_demo.parse_metrics(LOG) == dict(
        aAcc=90.5, mIoU=51.25, mAcc=60.0)
    assert run_demo.parse_metrics('no metrics here') == {}


def test_default_config_is_baseline():
    run_demo = load_tool('run_demo.py')
    args = run_demo.parse_args([])
    assert args.algo == 'baseline' and args.config is None
    assert run_demo.ALGOS['baseline'] == \
        'configs/baseline/deeplabv3_mnv2_aal_cpu.py'
    for cfg in run_demo.ALGOS.values():
        assert osp.isfile(osp.join(run_demo.REPO_ROOT, cfg)), cfg


def test_run_demo_end_to_end(tmp_path, aal_root, mobilenetv2_ckpt, capsys):
    run_demo = load_tool('run_demo.py')
    opts = [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.dataset.indices=2', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.dataset.indices=2', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1'
    ]
    res = run_demo.main([
        '--work-dir', str(tmp_path / 'wd'), '--seed', '3', '--quiet',
        '--skip-prepare', '--cfg-options'
    ] + opts)
    out = capsys.readouterr().out
    assert 0.0 <= res['metrics']['mIoU'] <= 100.0
    assert f'mIoU: {res["metrics"]["mIoU"]:.2f}' in out
    assert 'wall time: total' in out
    assert osp.isfile(res['checkpoint'])
    assert res['checkpoint'].endswith('iter_2.pth')
    with open(tmp_path / 'wd' / 'demo_result.json') as f:
        saved = json.load(f)
    assert saved['seed'] == 3 and saved['metrics'] == res['metrics']
    # the seed reached the training run
    with open(tmp_path / 'wd' / 'train.log') as f:
        assert 'seed: 3' in f.read()
