"""tools/analysis/gpu_check.py on a CPU machine: the report (table + JSON)
of a canned result, the exit without CUDA, the plain counterparts of the
measured configs, the measuring loop on tiny models, and the wheel-closure
check of ``make gpu-wheels``."""
import json
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config
from mmseg.registry import MODELS

from mmseg_contrast.tooling import gpu_check as gc
from mmseg_contrast.tooling import gpu_check_measure as gm
from mmseg_contrast.tooling import gpu_check_report as rep
from mmseg_contrast.tooling import gpu_check_wheels as gw

from helpers.semi_helpers import semi_cfg, tiny_segmentor_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _run(it_s, peak, syncs):
    return dict(it_s=it_s, ms_per_iter=1e3 / it_s, peak_mib=peak,
                syncs_per_iter=syncs, sync_sites={'a.py:1': syncs},
                logged_values=6, final_loss=1.0, finite=True)


def canned_result():
    res = rep.new_result(dict(gpu='NVIDIA H100', torch='2.11.0',
                              cuda='13.0', numpy='2.5.2'),
                         dict(iters=20, warmup=3, sync_iters=2), 'now')
    res['pytest'] = dict(status='passed', returncode=0,
                         summary='3 passed, 900 deselected in 40s')
    res['models'] = [
        dict(name='deeplabv3_r101_contrast', config='c.py', plain='ASPP',
             batch='2', crop=[512, 1024],
             runs=dict(fp32=dict(plugin=_run(4.0, 12000., 5),
                                 plain=_run(5.0, 10000., 2)),
                       fp16=dict(plugin=_run(8.0, 6000., 6),
                                 plain=_run(10.0, 5000., 3)))),
        dict(name='reco_semi', config='r.py', plain='MT', batch='10+10',
             crop=[321, 321],
             runs=dict(fp32=dict(plugin=dict(error='RuntimeError: boom'),
                                 plain=_run(2.0, 9000., 1)))),
    ]
    res['benchmarks'] = dict(benchmark_reco=dict(
        status='ok', returncode=0, key_lines=['speed-up ratio: 25.0x']))
    res['elapsed_s'] = 300.0
    return res


def test_table_and_json_of_a_canned_result(tmp_path):
    res = canned_result()
    assert rep.overall_status(res) == 'failed'  # one run raised
    res['status'] = rep.overall_status(res)
    table = rep.format_table(res)
    lines = table.splitlines()
    row = next(ln for ln in lines
               if ln.startswith('deeplabv3_r101_contrast') and 'fp32' in ln)
    # 4 it/s vs 5 it/s: +25 % time per iteration; memory 1.2x
    assert row.split() == ['deeplabv3_r101_contrast', 'fp32', '4.00', '5.00',
                           '+25.0%', '12000', '10000', '1.20x', '5', '/',
                           '2']
    assert any('fp16' in ln and '+25.0%' in ln and '1.20x' in ln
               for ln in lines)
    assert any(ln.startswith('reco_semi') and 'error: plugin: RuntimeError'
               in ln for ln in lines)
    assert 'NVIDIA H100' in lines[0] and lines[0].endswith('failed')
    assert 'pytest -m cuda: passed (3 passed' in table
    assert '  speed-up ratio: 25.0x' in lines
    assert 'syncs of deeplabv3_r101_contrast (fp32, per iter): a.py:1 x5' \
        in lines
    out = [str(tmp_path / 'docs' / 'results' / 'gpu_check.json'),
           str(tmp_path / 'copy' / 'gpu_check.json')]
    rep.write_json(res, out)
    for path in out:
        assert json.loads(Path(path).read_text()) == res
    assert sorted(os.listdir(tmp_path / 'copy')) == ['gpu_check.json']
    res['models'][1]['runs']['fp32']['plugin'] = _run(1.0, 1., 0)
    assert rep.overall_status(res) == 'ok'


def test_without_cuda_it_exits_at_once_with_the_reason(tmp_path):
    out = tmp_path / 'gpu_check.json'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    res = subprocess.run(
        [sys.executable, 'tools/analysis/gpu_check.py', '--out', str(out),
         '--wheels', str(tmp_path / 'none'), '--venv',
         str(tmp_path / 'venv')], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=120)
    assert res.returncode == 2
    assert 'gpu_check needs a CUDA GPU' in res.stderr
    assert 'sees no CUDA device' in res.stderr
    assert not out.exists() and not (tmp_path / 'venv').exists()


@pytest.mark.parametrize('case', gc.CASES, ids=lambda c: c.name)
def test_plain_counterpart_has_no_plugin_terms(case):
    cfg = Config.fromfile(osp.join(REPO, case.config))
    model, hooks = gc.plugin_config(cfg)
    plain, plain_hooks = gc.plain_config(cfg)
    text = json.dumps(plain)
    for key in ('proj_channels', 'contrast_loss', 'memory_bank', 'reco_loss',
                'proj_in', 'Pretrained', 'open-mmlab://'):
        assert key not in text, key
    assert '"pretrained": "' not in json.dumps(model)
    assert 'Pretrained' not in json.dumps(model)
    assert gc.plugin_types(model)  # the plugin's head is measured
    if case.unlabelled:  # still the mean teacher, without ReCo
        assert gc.plugin_types(plain) == ['SemiSegmentor']
        assert [h['type'] for h in plain_hooks] == ['MeanTeacherHook']
        assert plain['segmentor']['decode_head']['type'] == \
            'DepthwiseSeparableASPPHead'
    else:
        assert gc.plugin_types(plain) == []
        assert gc.plugin_types(plain_hooks) == []
    # the rest of the model is the same
    inner = (lambda m: m['segmentor']) if case.unlabelled else (lambda m: m)
    assert inner(plain)['backbone'] == inner(model)['backbone']
    assert {k: v for k, v in plain.items() if k != 'decode_head'
            and k != 'segmentor'} == {k: v for k, v in model.items()
                                      if k not in ('decode_head',
                                                   'segmentor')}


def test_stock_heads():
    assert gc.stock_head('ContrastASPPHead') == (
        'ASPPHead', ('proj_channels', 'contrast_loss', 'memory_bank',
                     'proj_norm_cfg', 'proj_in'))
    assert gc.stock_head('ContrastOCRHead')[0] == 'OCRHead'
    assert gc.stock_head('ContrastFCNHead')[0] == 'FCNHead'
    assert gc.stock_head('ContrastOpenSegASPPHead')[0] == 'OpenSegASPPHead'
    assert gc.stock_head('ReCoDepthwiseSeparableASPPHead') == (
        'DepthwiseSeparableASPPHead', ('proj_channels', 'reco_loss'))
    assert gc.stock_head('ASPPHead') is None


def test_plain_deeplabv3_r101_builds_without_plugin_modules():
    cfg = Config.fromfile(osp.join(REPO, gc.CASES[0].config))
    plain, _ = gc.plain_config(cfg)
    model = MODELS.build(plain)
    mods = {type(m).__module__.split('.')[0] for m in model.modules()}
    assert 'mmseg_contrast' not in mods and 'mmseg' in mods
    assert type(model.decode_head).__name__ == 'ASPPHead'


def _tiny_contrast_mem():
    model = tiny_segmentor_cfg(reco=False)
    model['decode_head'].update(
        type='ContrastASPPHead', proj_channels=8,
        contrast_loss=dict(type='PixelContrastLoss', max_samples=64,
                           max_views=4),
        memory_bank=dict(type='PixelMemoryBank', memory_size=16,
                         pixel_per_image=4))
    return model, [dict(type='PixelMemoryBankHook'),
                   dict(type='ContrastWarmupHook', warmup_iters=100)]


@pytest.mark.parametrize('kind', ['contrast_mem', 'reco_semi'])
def test_measuring_loop_runs_the_hooks_on_cpu(kind):
    """The timing loop on tiny models (CPU: no sync count, no peak
    memory): the bank hook enqueues, the teacher follows the student."""
    if kind == 'contrast_mem':
        model_cfg, hooks = _tiny_contrast_mem()
        batch = gm.synthetic_batch((64, 64), 4, 2, cell=16)
    else:
        model_cfg = semi_cfg(reco=True)
        hooks = [dict(type='MeanTeacherHook')]
        batch = gm.synthetic_batch((32, 32), 4, 2, 2, cell=8)
    optim = dict(type='OptimWrapper',
                 optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    assert [type(h).__name__ for h in gm.build_hooks(hooks)] == \
        [h['type'] for h in hooks if h['type'] != 'ContrastWarmupHook']
    out = gm.measure(model_cfg, optim, hooks, batch, 'cpu', 'fp32', iters=1,
                     warmup=1, sync_iters=0)
    assert out['finite'] and out['it_s'] > 0
    assert out['peak_mib'] is None and out['syncs_per_iter'] is None
    with pytest.raises(ValueError, match='fp32 or fp16'):
        gm.optim_wrapper_cfg(optim, 'bf16')
    assert gm.optim_wrapper_cfg(optim, 'fp16')['type'] == 'AmpOptimWrapper'


def test_wheel_closure_check():
    wheels = {
        'a.whl': ('mmengine', '0.10.7', ['addict', 'numpy',
                                         'opencv-python>=3',
                                         'regex; sys_platform == "win32"']),
        'b.whl': ('addict', '2.4.0', []),
        'c.whl': ('yapf', '0.43.0', ['platformdirs>=3.5.1',
                                     'tomli>=2; python_version < "3.11"']),
        'd.whl': ('pytest-timeout', '2.4.0', ['pytest>=7', 'colorama; '
                                              'extra == "win"']),
        'e.whl': ('pytest', '6.0', []),
        'f.whl': ('mmseg-contrast', '0.1.0', ['torch==2.14.1', 'nibabel']),
    }
    assert gw.unmet_requirements(wheels) == [
        ('pytest-timeout', 'pytest>=7'), ('yapf', 'platformdirs>=3.5.1')]
    pins = gw.read_pins(osp.join(REPO, 'requirements', 'gpu_wheels.txt'))
    names = {n for n, _ in pins}
    assert {'mmengine', 'mmcv-lite', 'mmsegmentation', 'mmpretrain',
            'regex', 'pyyaml', 'pytest'} <= names
    assert not names & gw.IMAGE_PROVIDES


def test_run_checks_measures_and_writes_on_cpu(tmp_path):
    """The orchestration (fp32 on CPU, one small case, no pytest and no
    benchmarks): a config that does not load is recorded, not fatal."""
    cases = (
        gc.Case('mnv2_contrast',
                'configs/pixel_contrast/deeplabv3_mnv2_contrast_aal_cpu.py',
                'ASPPHead', 2),
        gc.Case('missing', 'configs/none.py', '-', 2),
    )
    out = tmp_path / 'gpu_check.json'
    logged = []
    res = gc.run_checks(REPO, [str(out)], cases=cases, precisions=('fp32', ),
                        iters=1, warmup=0, sync_iters=0,
                        skip=('pytest', 'benchmarks'), log=logged.append,
                        device='cpu')
    assert json.loads(Path(out).read_text()) == res
    ok, missing = res['models']
    assert ok['crop'] == [160, 160] and ok['batch'] == '2'
    assert set(ok['runs']['fp32']) == {'plugin', 'plain'}
    assert all(r['finite'] for r in ok['runs']['fp32'].values())
    assert 'FileNotFoundError' in missing['error']
    assert res['status'] == 'failed'  # the missing config
    assert res['pytest'] is None and res['benchmarks'] == {}
    assert '[gpu_check] mnv2_contrast fp32' in logged
    assert 'missing' in rep.format_table(res)
