"""``mmcv.ops`` shim for mmcv-lite (patch ``mmcv_ops_shim`` of
:func:`mmseg_contrast._compat.apply`).

mmcv-lite has no compiled ``mmcv._ext``, but mmseg 1.2.2 imports
``point_sample`` and ``sigmoid_focal_loss`` unconditionally. Active only when
``mmcv._ext`` cannot be found. Provides pure-PyTorch :func:`point_sample` and
:func:`sigmoid_focal_loss`; any other name raises ``ModuleNotFoundError`` so
mmseg's optional ``try: from mmcv.ops import X`` guards keep working. With
full mmcv installed nothing is replaced.

This module imports only the standard library and torch, so it can be loaded
on its own (as the test against compiled ops does).
"""
import importlib.util
import sys
import types

import torch
import torch.nn.functional as F

__all__ = ['point_sample', 'sigmoid_focal_loss', 'install_mmcv_ops_shim']


def point_sample(input, points, align_corners=False, **kwargs):
    """Pure-PyTorch ``mmcv.ops.point_sample``.

    Samples ``input`` (N, C, H, W) at ``points`` (N, P, 2) or (N, Hp, Wp, 2)
    given in normalised ``[0, 1] x [0, 1]`` coordinates, i.e.
    ``grid_sample(input, 2 * points - 1)``. Returns (N, C, P) or
    (N, C, Hp, Wp), exactly like mmcv's implementation.
    """
    add_dim = False
    if points.dim() == 3:
        add_dim = True
        points = points.unsqueeze(2)
    output = F.grid_sample(
        input, 2.0 * points - 1.0, align_corners=align_corners, **kwargs)
    if add_dim:
        output = output.squeeze(3)
    return output


def sigmoid_focal_loss(input,
                       target,
                       gamma=2.0,
                       alpha=0.25,
                       weight=None,
                       reduction='mean'):
    """Pure-PyTorch ``mmcv.ops.sigmoid_focal_loss`` (same signature).

    ``input`` (N, C) logits, ``target`` (N,) class indices (``C`` = no
    positive class). With ``p = sigmoid(x)`` and ``t`` the one-hot target::

        loss = -alpha * (1 - p)^gamma * log(p)            if t == 1
               -(1 - alpha) * p^gamma * log(1 - p)        if t == 0

    multiplied by ``weight[n]`` when given; ``reduction='mean'`` divides the
    sum by N (as mmcv's kernel does), ``'sum'`` sums, ``'none'`` keeps (N, C).
    """
    if input.dim() != 2:
        raise ValueError(
            f'sigmoid_focal_loss expects input of shape (N, C), got '
            f'{tuple(input.shape)}')
    if target.shape != input.shape[:1]:
        raise ValueError(
            f'sigmoid_focal_loss expects target of shape ({input.size(0)},), '
            f'got {tuple(target.shape)}')
    if reduction not in ('none', 'mean', 'sum'):
        raise ValueError(f'unknown reduction {reduction!r}')
    num_classes = input.size(1)
    classes = torch.arange(num_classes, device=input.device)
    t = (target.long().unsqueeze(1) == classes).to(input.dtype)
    x = input
    # log(p) and log(1 - p) computed stably.
    log_p = F.logsigmoid(x)
    log_1mp = F.logsigmoid(-x)
    p = torch.sigmoid(x)
    loss = -(alpha * t * (1 - p).pow(gamma) * log_p +
             (1 - alpha) * (1 - t) * p.pow(gamma) * log_1mp)
    if weight is not None:
        if weight.dim() != 1 or weight.size(0) != input.size(0):
            raise ValueError('weight must have shape (N,)')
        loss = loss * weight.unsqueeze(1)
    if reduction == 'mean':
        return loss.sum() / input.size(0)
    if reduction == 'sum':
        return loss.sum()
    return loss


def _has_compiled_mmcv_ops():
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def _make_ops_shim():
    mod = types.ModuleType('mmcv.ops')
    mod.__file__ = __file__
    mod.__doc__ = ('mmcv.ops stand-in installed by mmseg_contrast._compat: '
                   'mmcv-lite has no compiled ops. Only point_sample and '
                   'sigmoid_focal_loss are available (pure PyTorch).')
    mod.point_sample = point_sample
    mod.sigmoid_focal_loss = sigmoid_focal_loss
    mod.__all__ = ['point_sample', 'sigmoid_focal_loss']
    mod.__mmseg_contrast_shim__ = True

    def __getattr__(name):
        if name.startswith('__') and name.endswith('__'):
            raise AttributeError(name)
        raise ModuleNotFoundError(
            f'mmcv.ops.{name} needs mmcv with compiled ops; this environment '
            f'has mmcv-lite (install full mmcv with `make mmcv-full`).',
            name='mmcv._ext')

    mod.__getattr__ = __getattr__
    return mod


def install_mmcv_ops_shim(force=False):
    """Install the ``mmcv.ops`` shim if mmcv has no compiled ops.

    Returns True when the shim was installed (or is already in place).
    """
    existing = sys.modules.get('mmcv.ops')
    if existing is not None and getattr(existing, '__mmseg_contrast_shim__',
                                        False):
        return True
    if not force and _has_compiled_mmcv_ops():
        return False
    try:
        import mmcv
    except ImportError as e:  # pragma: no cover - clear message
        raise ImportError(
            'mmseg_contrast needs mmcv (mmcv-lite==2.1.0 or mmcv==2.1.0); '
            'run `make install`.') from e
    # a half-imported real mmcv.ops (failed on _ext) must not linger
    for name in list(sys.modules):
        if name == 'mmcv.ops' or name.startswith('mmcv.ops.'):
            del sys.modules[name]
    shim = _make_ops_shim()
    sys.modules['mmcv.ops'] = shim
    mmcv.ops = shim
    return True
