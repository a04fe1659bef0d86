import os.path as osp

import pytest

from mmseg_contrast.tooling.figures.curves import (
    find_log,
    load_log,
    plot_curves,
)

from helpers.tool_loading import load_tool

curves = load_tool('analysis/plot_curves.py')


def _write_run(work_dir, contrast, miou):
    """A real mmengine scalar log, written by LocalVisBackend."""
    from mmengine.visualization import LocalVisBackend
    vis = LocalVisBackend(save_dir=str(work_dir / '20260101_000000' /
                                       'vis_data'))
    for it in range(10, 101, 10):
        s = {'lr': 0.01, 'loss': 3.0 / it, 'decode.loss_ce': 2.0 / it,
             'decode.acc_seg': 50.0, 'aux.loss_ce': 1.0 / it}
        if contrast:
            s['decode.loss_contrast'] = 0.5 / it
        vis.add_scalars(s, step=it)
        if it % 50 == 0:
            vis.add_scalars({'aAcc': 90.0, 'mIoU': miou + it / 100,
                             'mAcc': 60.0}, step=it)
    vis.close()


def test_two_runs_overlaid(tmp_path):
    _write_run(tmp_path / 'ce', False, 40.0)
    _write_run(tmp_path / 'con', True, 45.0)
    out = str(tmp_path / 'curves.png')
    keys = curves.main([str(tmp_path / 'ce'), str(tmp_path / 'con'),
                        '--legend', 'CE', 'contrast', '--out', out,
                        '--smooth', '3'])
    assert keys == ['loss', 'aux.loss_ce', 'decode.loss_ce',
                    'decode.loss_contrast', 'mIoU']
    assert osp.getsize(out) > 10_000


def test_load_log_and_errors(tmp_path):
    _write_run(tmp_path / 'r', True, 30.0)
    log = find_log(str(tmp_path / 'r'))
    assert log.endswith(osp.join('vis_data', 'scalars.json'))
    s = load_log(log)
    assert s['mIoU'] == ([50, 100], [30.5, 31.0])
    assert len(s['decode.loss_contrast'][0]) == 10
    with pytest.raises(FileNotFoundError, match='No such log'):
        find_log(str(tmp_path / 'missing'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='vis_data'):
        find_log(str(tmp_path / 'empty'))
    (tmp_path / 'bad.json').write_text('{"step": 1, "loss": 1}\nnot json\n')
    with pytest.raises(ValueError, match='bad.json:2'):
        load_log(str(tmp_path / 'bad.json'))
    with pytest.raises(SystemExit, match='no key matches'):
        curves.main([log, '--keys', 'nothing_like_this', '--metrics', 'x',
                     '--out', str(tmp_path / 'o.png')])


def test_library_error_is_a_value_error(tmp_path):
    from mmseg_contrast.tooling.figures.errors import FigureInputError
    _write_run(tmp_path / 'r', False, 30.0)
    with pytest.raises(FigureInputError, match='--legend needs 1 names'):
        plot_curves([str(tmp_path / 'r')], ['a', 'b'],
                    out=str(tmp_path / 'o.png'))
    with pytest.raises(SystemExit, match='--legend needs 1 names'):
        curves.main([str(tmp_path / 'r'), '--legend', 'a', 'b'])
