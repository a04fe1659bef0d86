"""tools/run_densecl_demo.py helpers: the fine-tuning schedule override and
the metric read-back (the full pipeline is run by `make densecl-demo`)."""
import json
import os.path as osp

import pytest

from helpers.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def demo():
    return load_tool('run_densecl_demo.py')


def test_finetune_cfg_equal_budget(demo, tmp_path):
    for path in (demo.DENSECL_FT_CFG, demo.RANDOM_FT_CFG):
        cfg = demo._finetune_cfg(path, 37, str(tmp_path), seed=3)
        assert cfg.train_cfg.max_iters == 37 == cfg.train_cfg.val_interval
        assert all(s.end == 37 for s in cfg.param_scheduler)
        assert cfg.default_hooks.checkpoint.interval == 37
        assert cfg.randomness.seed == 3 and cfg.work_dir == str(tmp_path)
    dense = demo._finetune_cfg(demo.DENSECL_FT_CFG, 5, str(tmp_path))
    rand = demo._finetune_cfg(demo.RANDOM_FT_CFG, 5, str(tmp_path))
    assert dense.model.backbone.init_cfg.type == 'Pretrained'
    assert rand.model.backbone.init_cfg is None
    # identical apart from the backbone initialisation
    dense.model.backbone.init_cfg = None
    assert dense.model.to_dict() == rand.model.to_dict()


def test_last_metrics(demo, tmp_path):
    d = tmp_path / '20260101_000000' / 'vis_data'
    d.mkdir(parents=True)
    lines = [{'loss': 1.0, 'step': 1}, {'mIoU': 10.0, 'step': 2},
             {'loss': 0.5, 'step': 3}, {'mIoU': 12.5, 'aAcc': 80.0,
                                        'step': 4}]
    (d / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in lines))
    assert demo._last_metrics(str(tmp_path))['mIoU'] == 12.5
    with pytest.raises(FileNotFoundError):
        demo._last_metrics(str(tmp_path / 'none'))


def test_pretrain_defaults_fit_the_dataset(demo):
    """Queue of one batch and the linearly scaled MoCo lr by default."""
    from mmengine.config import Config

    from mmseg_contrast.selfsup.densecl import own_image_in_queue_prob
    args = demo.parse_args([])
    assert args.queue_len == 16 and args.pretrain_batch_size == 16
    assert own_image_in_queue_prob(82, args.queue_len,
                                   args.pretrain_batch_size) < 0.05
    cfg = Config.fromfile(osp.join(REPO, demo.PRETRAIN_CFG))
    assert demo.pretrain_lr(cfg, args) == pytest.approx(0.03 * 16 / 256)
    args = demo.parse_args(['--pretrain-batch-size', '32'])
    assert demo.pretrain_lr(cfg, args) == pytest.approx(0.03 * 32 / 256)
    args = demo.parse_args(['--pretrain-lr', '0.01'])
    assert demo.pretrain_lr(cfg, args) == 0.01
