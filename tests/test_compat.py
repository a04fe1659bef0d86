"""Tests for ``mmseg_contrast/_compat.py`` (the compatibility layer)."""
import os.path as osp

import numpy as np
import pytest
import torch

from mmseg_contrast import _compat
from mmseg_contrast._compat import mmcv_ops
from mmseg_contrast._compat import pkg_resources_backport as pkg_bp

from helpers.subprocess_run import run_py


# ---------------------------------------------------------------- mmcv.ops
def test_mmseg_models_imports_and_registers():
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    for name in ('EncoderDecoder', 'CascadeEncoderDecoder', 'ASPPHead',
                 'DepthwiseSeparableASPPHead', 'OCRHead', 'FCNHead',
                 'FocalLoss', 'CrossEntropyLoss', 'MobileNetV2', 'HRNet'):
        assert MODELS.get(name) is not None, name


@pytest.mark.skipif(mmcv_ops._has_compiled_mmcv_ops(),
                    reason='full mmcv installed: the shim must be inactive '
                    '(covered by test_shim_inactive_with_compiled_ops)')
def test_shim_active_on_mmcv_lite():
    import mmcv.ops
    assert getattr(mmcv.ops, '__mmseg_contrast_shim__', False)
    assert 'mmcv_ops_shim' in _compat.APPLIED
    assert mmcv.ops.point_sample is _compat.point_sample
    assert mmcv.ops.sigmoid_focal_loss is _compat.sigmoid_focal_loss
    # other names behave like a missing compiled extension, so mmseg's
    # optional `try: from mmcv.ops import X except ModuleNotFoundError` works
    with pytest.raises(ModuleNotFoundError, match='compiled ops'):
        from mmcv.ops import CrissCrossAttention  # noqa: F401
    with pytest.raises(AttributeError):
        mmcv.ops.__wrapped__  # dunders: AttributeError, not an import error
    # mmseg's guarded heads fell back as designed
    from mmseg.models.decode_heads import cc_head
    assert cc_head.CrissCrossAttention is None


def test_shim_inactive_with_compiled_ops():
    """With compiled ops present (simulated ``mmcv._ext``), nothing is
    replaced: ``mmcv.ops`` is mmcv's own module."""
    code = '''
    import importlib.abc, importlib.machinery, sys, types
    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name == 'mmcv._ext':
                return importlib.machinery.ModuleSpec(name, self)
        def create_module(self, spec):
            return types.ModuleType(spec.name)
        def exec_module(self, module):
            pass
    sys.meta_path.insert(0, Finder())
    import importlib.util
    # load the shim module alone (the package __init__ would import
    # mmseg.models, which needs the real compiled ops)
    spec = importlib.util.spec_from_file_location('_compat', %r)
    _compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_compat)
    assert _compat._has_compiled_mmcv_ops()
    assert _compat.install_mmcv_ops_shim() is False
    assert 'mmcv.ops' not in sys.modules or not getattr(
        sys.modules['mmcv.ops'], '__mmseg_contrast_shim__', False)
    print('INACTIVE-OK')
    '''
    res = run_py(code % mmcv_ops.__file__)
    assert 'INACTIVE-OK' in res.stdout, res.stderr[-2000:]


def _bilinear_reference(img, x, y):
    """Bilinear sample of img (C, H, W) at continuous pixel coords (x, y)
    with zero padding, align_corners=False convention (pixel centres at
    integer + 0.5)."""
    C, H, W = img.shape
    px, py = x * W - 0.5, y * H - 0.5
    x0, y0 = int(np.floor(px)), int(np.floor(py))
    out = np.zeros(C)
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            w = (1 - abs(px - xi)) * (1 - abs(py - yi))
            if 0 <= xi < W and 0 <= yi < H:
                out += w * img[:, yi, xi]
    return out


def test_point_sample_matches_bilinear_formula():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 5, 7, generator=g, dtype=torch.float64)
    pts = torch.rand(2, 6, 2, generator=g, dtype=torch.float64)
    out = _compat.point_sample(img, pts)
    assert out.shape == (2, 3, 6)
    for n in range(2):
        for p in range(6):
            ref = _bilinear_reference(img[n].numpy(), pts[n, p, 0].item(),
                                      pts[n, p, 1].item())
            np.testing.assert_allclose(out[n, :, p].numpy(), ref, atol=1e-10)
    # 4-D grid form keeps the spatial layout
    grid = pts.view(2, 2, 3, 2)
    out4 = _compat.point_sample(img, grid)
    assert out4.shape == (2, 3, 2, 3)
    torch.testing.assert_close(out4.reshape(2, 3, 6), out)
    # align_corners=True maps 0 and 1 onto the corner pixels
    corners = torch.tensor([[[0., 0.], [1., 1.]]], dtype=torch.float64)
    oc = _compat.point_sample(img[:1], corners, align_corners=True)
    torch.testing.assert_close(oc[0, :, 0], img[0, :, 0, 0])
    torch.testing.assert_close(oc[0, :, 1], img[0, :, -1, -1])


def test_sigmoid_focal_loss_matches_formula():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64,
                    requires_grad=True)
    target = torch.tensor([0, 3, 1, 4, 2])  # 4 == no positive class
    weight = torch.rand(5, generator=g, dtype=torch.float64)
    gamma, alpha = 2.0, 0.25
    ref = np.zeros((5, 4))
    xs = x.detach().numpy()
    for n in range(5):
        for c in range(4):
            p = 1 / (1 + np.exp(-xs[n, c]))
            if target[n] == c:
                ref[n, c] = -alpha * (1 - p)**gamma * np.log(p)
            else:
                ref[n, c] = -(1 - alpha) * p**gamma * np.log(1 - p)
    none = _compat.sigmoid_focal_loss(x, target, gamma, alpha, None, 'none')
    np.testing.assert_allclose(none.detach().numpy(), ref, rtol=1e-10)
    mean = _compat.sigmoid_focal_loss(x, target, gamma, alpha, weight, 'mean')
    np.testing.assert_allclose(
        mean.item(), (ref * weight.numpy()[:, None]).sum() / 5, rtol=1e-10)
    total = _compat.sigmoid_focal_loss(x, target, gamma, alpha, None, 'sum')
    np.testing.assert_allclose(total.item(), ref.sum(), rtol=1e-10)
    total.backward()
    assert torch.isfinite(x.grad).all()
    # extreme logits stay finite
    big = torch.tensor([[80., -80.]])
    assert torch.isfinite(
        _compat.sigmoid_focal_loss(big, torch.tensor([1]))).all()
    with pytest.raises(ValueError, match='shape'):
        _compat.sigmoid_focal_loss(x, target[:3])


def test_mmseg_focal_loss_wrapper_runs_through_shim():
    """mmseg's (CUDA-path) ``sigmoid_focal_loss`` wrapper calls
    ``mmcv.ops.sigmoid_focal_loss``; with the shim it runs anywhere and
    equals the formula."""
    from mmseg.models.losses import focal_loss
    pred = torch.randn(6, 3, requires_grad=True)
    target = torch.tensor([0, 1, 2, 1, 0, 2])
    value = focal_loss.sigmoid_focal_loss(
        pred, target, None, gamma=2.0, alpha=0.25, reduction='mean')
    ref = _compat.sigmoid_focal_loss(pred, target, 2.0, 0.25, None, 'none')
    torch.testing.assert_close(value, ref.mean())
    value.backward()
    assert pred.grad.abs().sum() > 0


def test_mmseg_point_sample_users_work():
    from mmseg.models.utils import point_sample as mmseg_ps  # noqa: F401
    from mmseg.utils import mask_classification
    img = torch.rand(1, 2, 4, 4)
    out = mask_classification.point_sample(img, torch.rand(1, 3, 2))
    assert out.shape == (1, 2, 3)


def test_apply_is_idempotent():
    before = list(_compat.APPLIED)
    assert _compat.apply() == before
    from mmengine.runner.checkpoint import CheckpointLoader
    assert getattr(CheckpointLoader._schemes[''], '__mmseg_contrast__',
                   False)


# --------------------------------------------------------- pkg_resources
def test_pkg_resources_backport_matches_mmengine():
    from mmengine.utils import get_installed_path, is_installed
    assert pkg_bp._importlib_is_installed('mmsegmentation')
    assert is_installed('mmsegmentation')
    assert not pkg_bp._importlib_is_installed('surely-not-a-package-x')
    assert osp.realpath(pkg_bp._importlib_get_installed_path(
        'mmsegmentation')) == osp.realpath(
            get_installed_path('mmsegmentation'))
    assert pkg_bp._importlib_package2module('mmsegmentation') == 'mmseg'


def test_mmseg_config_resolves_without_pkg_resources(tmp_path):
    """Simulate setuptools >= 82 (no pkg_resources): the backport keeps
    ``mmseg::`` configs working."""
    cfg = tmp_path / 'c.py'
    cfg.write_text("_base_ = ['mmseg::_base_/models/deeplabv3_r50-d8.py']\n")
    res = run_py(f'''
    import sys
    sys.modules['pkg_resources'] = None  # import fails like setuptools>=82
    import mmseg_contrast
    from mmseg_contrast import _compat
    assert 'pkg_resources_backport' in _compat.APPLIED, _compat.APPLIED
    from mmengine.config import Config
    cfg = Config.fromfile({str(cfg)!r})
    print('TYPE', cfg.model.decode_head.type)
    ''')
    assert 'TYPE ASPPHead' in res.stdout, res.stderr[-3000:]
