"""The accuracy suite (:mod:`mmseg_contrast.tooling.accuracy_suite`, CLI
``tools/analysis/bench_accuracy.py``): configs exist and parse, the suite
entry is recomputed from the per-seed values, discarded runs are read from
disk."""
import glob
import json
import os
import os.path as osp

import pytest
from scipy import stats

from mmseg_contrast.tooling import accuracy_suite as ba
from mmseg_contrast.tooling.accuracy_suite import pretrain
from mmseg_contrast.tooling.compare import CompareError

from helpers.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_arms_and_comparisons_are_consistent():
    from mmengine.config import Config
    for name, (base, meth, dataset) in ba.COMPARISONS.items():
        assert base in ba.ARMS and meth in ba.ARMS, name
        assert 'labelled' in dataset
    for arm, cfg in ba.ARMS.items():
        c = Config.fromfile(osp.join(REPO, cfg))
        assert c.train_cfg.max_iters == 400, arm  # equal iterations
    pre = Config.fromfile(osp.join(REPO, ba.DENSECL_PRETRAIN))
    assert pre.model.queue_len % pre.train_dataloader.batch_size == 0


@pytest.mark.parametrize(
    'path', sorted(glob.glob(osp.join(REPO, 'configs', 'bench',
                                      'deeplabv3_*.py'))),
    ids=osp.basename)
def test_every_bench_config_builds_its_model(path):
    # pilot arms outside ARMS too (CBST, ratio weighting): a wrong key in
    # semi_train_cfg must fail here, not after a pilot's first minutes
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.train_cfg.max_iters == 400
    model = MODELS.build(cfg.model)
    assert model.num_classes == 11


def test_suite_entry_recomputes_summary_from_per_seed_values():
    report = dict(
        comparisons=[dict(baseline='a', method='b', seeds=[0, 1, 2],
                          baseline_miou=[10., 12., 11.],
                          method_miou=[11., 14., 11.5],
                          baseline_config='x.py', method_config='y.py',
                          diff_mean=999, ci95=[999, 999])],
        protocol=dict(max_iters=dict(a=4, b=4)),
        runs=[dict(arm='a', seed=0, train_s=1.0),
              dict(arm='b', seed=0, train_s=2.0)])
    e = ba.suite_entry('x', report, 'ds')
    d = [1., 2., 0.5]
    mean = sum(d) / 3
    sd = stats.tstd(d)
    half = stats.t.ppf(0.975, 2) * sd / 3 ** 0.5
    assert e['diff_mean'] == pytest.approx(mean)
    assert e['ci95'] == pytest.approx([mean - half, mean + half])
    assert e['per_seed_diff'] == pytest.approx(d)
    assert e['baseline_miou'] == [10., 12., 11.] and e['dataset'] == 'ds'
    assert e['wall_s'] == dict(a=1.0, b=2.0)


def test_discarded_protocols_read_finished_runs_only(tmp_path):
    for arm, seed, miou in (('sup', 0, 14.0), ('sup', 1, 13.0),
                            ('semi', 0, 7.0)):
        d = tmp_path / arm / f'seed_{seed}'
        os.makedirs(d)
        (d / 'result.json').write_text(json.dumps(
            dict(metrics=dict(mIoU=miou))))
    os.makedirs(tmp_path / 'semi' / 'seed_1')  # interrupted: no result
    out = ba.discarded_protocols(str(tmp_path))['semi_vs_sup_20labels']
    assert out['baseline']['miou_by_seed'] == {0: 14.0, 1: 13.0}
    assert out['method']['miou_by_seed'] == {0: 7.0}


def test_markdown_table_from_suite_json():
    c = dict(name='x_vs_y', dataset='fashion_canvas (20 labelled / 1980 '
             'unlabelled)', baseline='y', method='x', baseline_mean=1.0,
             baseline_std=0.5, method_mean=2.0, method_std=0.25,
             per_seed_diff=[1.0, 0.5, 1.5], diff_mean=1.0, ci95=[-0.24, 2.24])
    table = ba.markdown_table(dict(comparisons=[c]))
    assert '| `x_vs_y` | 20 | y 1.00 ± 0.50 | x 2.00 ± 0.25 |' in table
    assert '+1.00, +0.50, +1.50 | **+1.00** [-0.24, +2.24] |' in table


def test_densecl_length_keys_the_pretraining_and_the_arm(tmp_path):
    """Another --densecl-iters gets its own pre-training dir and arm, and a
    reused pre-training dir of another length is refused."""
    from mmengine.config import Config
    n = ba.densecl_iters()
    assert ba.densecl_arm() == ba.densecl_arm(n) == 'densecl100'
    assert ba.densecl_arm(n // 4) == f'densecl100_{n // 4}it'
    a = ba.densecl_pretrain_dir('w', 0)
    assert a == osp.join('w', f'densecl_pretrain_{n}it', 'seed_0')
    assert ba.densecl_pretrain_dir('w', 0, n // 4) != a
    wd = tmp_path / 'pre'
    os.makedirs(wd)
    ba.check_pretrain_length(str(wd), n)  # nothing dumped yet: fine
    # the config dump tools/train.py leaves in a work dir (resolved, no
    # _base_ to follow)
    Config.fromfile(osp.join(REPO, ba.DENSECL_PRETRAIN)).dump(
        str(wd / osp.basename(ba.DENSECL_PRETRAIN)))
    ba.check_pretrain_length(str(wd), n)
    with pytest.raises(CompareError, match=f'{n}-iteration'):
        ba.check_pretrain_length(str(wd), n // 4)


def test_one_seed_suite_has_no_ci_and_still_reports(tmp_path):
    """--seeds 0 (one seed): no CI, no std; table and figure still made."""
    c = dict(name='x_vs_y', dataset='fashion_canvas (100 labelled / 1900 '
             'unlabelled)', baseline='y', method='x', baseline_mean=1.0,
             baseline_std=None, method_mean=2.0, method_std=None,
             per_seed_diff=[1.0], diff_mean=1.0, ci95=None,
             baseline_miou=[1.0], method_miou=[2.0], seeds=[0])
    table = ba.markdown_table(dict(comparisons=[c]))
    assert '| y 1.00 | x 2.00 | +1.00 | **+1.00** (1 seed: no CI) |' in table
    png = ba.plot_suite(dict(comparisons=[c]), str(tmp_path / 's.png'))
    assert osp.getsize(png) > 1000


def test_trained_pretraining_is_converted_not_resumed(tmp_path, monkeypatch):
    """A pre-training that reached its last iteration but was not converted
    is converted directly: mmengine's resume would replay every batch."""
    n = ba.densecl_iters()
    wd = tmp_path / 'densecl_pretrain' / 'seed_0'
    os.makedirs(wd)
    (wd / f'iter_{n}.pth').write_bytes(b'x')
    (wd / 'last_checkpoint').write_text('/elsewhere/iter_1.pth')
    calls = []

    def fake_run(cmd, log, what, arm, cfg):
        calls.append(what)
        if 'densecl2mmseg' in what:
            open(cmd[3], 'wb').close()  # the converter's output (.tmp)
    monkeypatch.setattr(pretrain, 'run_logged', fake_run)
    out = ba.pretrain_and_convert(str(wd), 0, n)
    assert calls == ['model_converters/densecl2mmseg']
    assert osp.isfile(out)
    assert (wd / 'last_checkpoint').read_text().endswith(f'iter_{n}.pth')


def test_cli_markdown_prints_the_table_of_the_suite_json(
        tmp_path, monkeypatch, capsys):
    c = dict(name='x_vs_y', dataset='fashion_canvas (20 labelled / 1980 '
             'unlabelled)', baseline='y', method='x', baseline_mean=1.0,
             baseline_std=0.5, method_mean=2.0, method_std=0.25,
             per_seed_diff=[1.0, 0.5, 1.5], diff_mean=1.0, ci95=[-0.24, 2.24])
    out = tmp_path / 'suite.json'
    out.write_text(json.dumps(dict(comparisons=[c])))
    monkeypatch.chdir(tmp_path)  # the tool changes to the repo root
    tool = load_tool('analysis/bench_accuracy.py')
    assert tool.main(['--markdown', '--out', str(out)]) == 0
    assert capsys.readouterr().out.strip() == ba.markdown_table(
        dict(comparisons=[c]))
