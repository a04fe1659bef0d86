import csv
import os.path as osp

import numpy as np
import pytest
import torch

from mmseg_contrast.tooling.embedding_analysis import class_relation

from helpers.tool_helpers import CONFIG, CONTRAST_OPTIONS, cli_options
from helpers.tool_loading import load_tool

relation = load_tool('analysis/class_relation.py')


def test_class_relation_math():
    # class 0 and 2 point the same way, class 1 is orthogonal, 3 unseen
    sums = torch.tensor([[2., 0.], [0., 3.], [5., 0.], [0., 0.]],
                        dtype=torch.float64)
    counts = torch.tensor([2, 3, 5, 0])
    names, cos, Z = class_relation(sums, counts, ['a', 'b', 'c', 'd'])
    assert names == ['a', 'b', 'c']
    np.testing.assert_allclose(cos, [[1, 0, 1], [0, 1, 0], [1, 0, 1]],
                               atol=1e-6)
    # a and c merge first, at distance 0
    assert sorted(Z[0, :2].astype(int).tolist()) == [0, 2]
    assert Z[0, 2] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match='Fewer than 2 classes'):
        class_relation(sums, torch.tensor([1, 0, 0, 0]), list('abcd'))


def test_relation_png_csv_dendrogram(tmp_path, aal_options, contrast_ckpt):
    prefix = str(tmp_path / 'figs' / 'contrast')
    res = relation.main([CONFIG, contrast_ckpt, '--out-prefix', prefix] +
                        cli_options(dict(aal_options, **CONTRAST_OPTIONS)))
    for f in (res['png'], res['dendrogram'], res['csv']):
        assert osp.getsize(f) > 1000
    with open(res['csv']) as f:
        rows = list(csv.reader(f))
    names = rows[0][1:]
    k = len(names)
    assert names == res['names'] and k >= 3
    assert res['kind'] == 'proj'  # the contrast head's proj_head
    np.testing.assert_allclose(res['negative_distribution'].sum(1), 1.0)
    assert [r[0] for r in rows[1:]] == names
    mat = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert mat.shape == (k, k)
    np.testing.assert_allclose(np.diag(mat), 1.0, atol=1e-4)
    np.testing.assert_allclose(mat, mat.T, atol=1e-6)
    assert sorted(res['order']) == sorted(names)  # every class is a leaf
    from mmseg_contrast.datasets.aal_slices import AALSliceDataset
    assert set(names) <= set(AALSliceDataset.METAINFO['classes'])


def test_semi_supervised_reco_checkpoint(tmp_path, aal_root):
    """A mean-teacher ReCo checkpoint: the predicting branch (teacher) and
    its ReCo representation head (``reco_proj``) are used."""
    from mmengine.config import Config
    from mmseg.registry import MODELS

    from mmseg_contrast.tooling.embedding_analysis import init_segmentor
    cfg_file = osp.join(osp.dirname(CONFIG), '..', 'reco',
                        'deeplabv3_mnv2_reco-classmix_5pct-aal_cpu.py')
    cfg = Config.fromfile(cfg_file)
    torch.manual_seed(0)
    semi = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'semi.pth')
    torch.save({'state_dict': semi.state_dict()}, ckpt)
    model, _ = init_segmentor(cfg_file, ckpt)
    assert model is not semi and hasattr(model, 'decode_head')
    w = 'decode_head.conv_seg.weight'
    assert torch.equal(model.state_dict()[w], semi.teacher.state_dict()[w])
    from mmseg_contrast.tooling.figures.relation import relation_figures
    prefix = str(tmp_path / 'reco')
    res = relation_figures(
        cfg_file, ckpt, out_prefix=prefix, max_images=2,
        cfg_options={'val_dataloader.dataset.data_root': aal_root})
    assert osp.getsize(res['csv']) > 100
    assert res['kind'] == 'proj'  # the ReCo representation head


def test_reco_negative_distribution():
    from mmseg_contrast.tooling.embedding_analysis import (
        reco_negative_distribution,
    )
    cos = np.array([[1.0, 0.8, -0.2], [0.8, 1.0, 0.1], [-0.2, 0.1, 1.0]])
    p = reco_negative_distribution(cos, tau=0.5)
    np.testing.assert_allclose(np.diag(p), 0.0)
    np.testing.assert_allclose(p.sum(1), 1.0)
    # row 0: softmax over classes 1 and 2 of (0.8, -0.2) / 0.5
    e = np.exp(np.array([0.8, -0.2]) / 0.5)
    np.testing.assert_allclose(p[0, 1:], e / e.sum())
