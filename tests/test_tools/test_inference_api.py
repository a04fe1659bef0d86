"""mmseg's inference API (``init_model`` + ``inference_model``, and
``MMSegInferencer``) on one config of every config folder, the
``SemiSegmentor`` ones included (which predict with their configured
``semi_test_cfg.predict_on`` branch)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.apis import MMSegInferencer, inference_model, init_model
from mmseg.registry import MODELS

from mmseg_contrast.tooling.data import prepare_fashion_canvas

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: one config per folder (two for the semi-supervised ones)
CONFIGS = {
    'baseline': 'configs/baseline/deeplabv3_mnv2_aal_cpu.py',
    'pixel_contrast': 'configs/pixel_contrast/'
    'deeplabv3_mnv2_contrast-mem_aal_cpu.py',
    'reco': 'configs/reco/deeplabv3_mnv2_reco-classmix_5pct-aal_cpu.py',
    'reco_sup': 'configs/reco/deeplabv3_mnv2_sup-reco_5pct-aal_cpu.py',
    'densecl': 'configs/densecl/deeplabv3_mnv2_densecl-aal-pre_aal_cpu.py',
    'bench': 'configs/bench/'
    'deeplabv3_mnv2_meanteacher-classmix_20lab-fashion_cpu.py',
}


def _image(name, aal_root):
    if 'fashion' in CONFIGS[name]:
        root = prepare_fashion_canvas()
        return sorted(glob.glob(osp.join(root, 'img_dir', 'test',
                                         '*.png')))[0]
    return sorted(glob.glob(osp.join(aal_root, 'img_dir', 'val',
                                     '*.png')))[0]


def _checkpoint(cfg_file, path):
    """A checkpoint of the config's model, student != teacher weights."""
    cfg = Config.fromfile(cfg_file)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    state = model.state_dict()
    for k in state:
        if k.startswith('student.') and state[k].is_floating_point():
            state[k] = state[k] + 0.5 * torch.randn_like(state[k])
    torch.save({'state_dict': state,
                'meta': {'dataset_meta': {'classes': ['c'] * 32}}}, path)
    return path


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_init_model_and_inferencer(name, tmp_path, aal_root,
                                   mobilenetv2_ckpt):
    cfg_file = osp.join(REPO, CONFIGS[name])
    ckpt = _checkpoint(cfg_file, str(tmp_path / 'model.pth'))
    img = _image(name, aal_root)
    model = init_model(cfg_file, ckpt, device='cpu')
    result = inference_model(model, img)
    h, w = result.pred_sem_seg.data.shape[-2:]
    assert (h, w) == tuple(result.img_shape if 'img_shape' in result
                           else (h, w))
    assert result.seg_logits.data.isfinite().all()
    if model.__class__.__name__ == 'SemiSegmentor':
        branch = model.semi_test_cfg.get('predict_on', 'teacher')
        sub = getattr(model, branch)
        sub.cfg = model.cfg
        alone = inference_model(sub, img)
        torch.testing.assert_close(alone.seg_logits.data,
                                   result.seg_logits.data)
        other = model.student if branch == 'teacher' else model.teacher
        other.cfg = model.cfg
        assert not torch.allclose(inference_model(other, img).seg_logits
                                  .data, result.seg_logits.data)
    inferencer = MMSegInferencer(model=cfg_file, weights=ckpt, device='cpu')
    out = inferencer(img, return_datasamples=True)
    torch.testing.assert_close(out.seg_logits.data, result.seg_logits.data)
