import json

import pytest
import torch

from mmseg_contrast.tooling.pseudo_label_stats import (
    confusion_by_threshold,
    format_table,
    summarise,
)

from helpers.tool_helpers import CONFIG, cli_options
from helpers.tool_loading import load_tool

pls = load_tool('analysis/pseudo_label_stats.py')


def test_summary_math():
    # 2 classes; threshold 0: everything confident, threshold 1: nothing
    # rows = ground truth, columns = prediction
    m = torch.tensor([[[6, 2], [1, 1]], [[0, 0], [0, 0]]])
    gt = torch.tensor([8, 2])
    st = summarise(m, gt, [0.0, 1.0], ['bg', 'fg'])
    a, b = st
    assert a['confident'] == pytest.approx(100.)
    assert a['accuracy_of_confident'] == pytest.approx(70.)
    bg, fg = a['classes']
    assert bg['gt_share'] == pytest.approx(80.)
    assert bg['recall'] == pytest.approx(75.)  # 6 of 8
    assert bg['precision'] == pytest.approx(600 / 7)  # 6 of 7 predicted bg
    assert fg['precision'] == pytest.approx(100 / 3)
    assert bg['pseudo_share'] + fg['pseudo_share'] == pytest.approx(100.)
    assert b['confident'] == 0 and b['accuracy_of_confident'] is None
    assert b['classes'][1]['precision'] is None
    assert 'fg' in format_table(a)


class _Stub:
    """predict() returns fixed logits: pixel (0, 0) is confident class 1,
    the rest 50/50 between classes 0 and 1 (class 0 wins the tie)."""

    def data_preprocessor(self, batch, training):
        return batch

    def predict(self, inputs, samples):
        from mmengine.structures import PixelData
        for ds in samples:
            logits = torch.zeros(2, 2, 2)
            logits[1, 0, 0] = 10.
            ds.seg_logits = PixelData(data=logits)
        return samples


def test_confusion_counts():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    ds = SegDataSample()
    ds.gt_sem_seg = PixelData(data=torch.tensor([[[1, 0], [255, 1]]]))
    m, gt = confusion_by_threshold(_Stub(), [dict(inputs=None,
                                                      data_samples=[ds])],
                                       2, [0.4, 0.9], ignore_index=255)
    assert gt.tolist() == [1, 2]  # the ignore pixel is left out
    assert m[0].tolist() == [[1, 0], [1, 1]]  # all 3 pixels confident at .4
    assert m[1].tolist() == [[0, 0], [0, 1]]  # only (0, 0) at .9


def test_cli_json(tmp_path, aal_options, ce_ckpt):
    out = tmp_path / 'stats.json'
    res = pls.main([CONFIG, ce_ckpt, '--thresholds', '0.1', '0.99',
                    '--out', str(out)] + cli_options(aal_options))
    saved = json.loads(out.read_text())
    assert saved['images'] == 4 and len(saved['thresholds']) == 2
    lo, hi = saved['thresholds']
    assert lo['confident'] >= hi['confident']
    assert sum(c['gt_share'] for c in lo['classes']) == pytest.approx(100.)
    assert res['thresholds'][0]['threshold'] == 0.1
    with pytest.raises(SystemExit, match='thresholds'):
        pls.main([CONFIG, ce_ckpt, '--thresholds', '1.5'])
    with pytest.raises(SystemExit, match='dataset wrapper'):
        semi = CONFIG.replace(
            'baseline/deeplabv3_mnv2_aal_cpu.py',
            'reco/deeplabv3_mnv2_meanteacher-classmix_5pct-aal_cpu.py')
        pls.main([semi, ce_ckpt, '--split', 'train', '--ann-file', 'x.txt'])
