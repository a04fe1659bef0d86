"""Compatibility layer for the pinned OpenMMLab stack.

Everything the plugin needs to run mmsegmentation 1.2.2 + mmengine 0.10.7 on a
modern machine lives here, in one place, and each fix is applied only when the
installed packages actually need it. :func:`apply` is called by
``mmseg_contrast/__init__.py`` before anything imports ``mmseg.models``.

Fixes (see README, "Compatibility layer"):

1. ``mmcv.ops`` shim (mmcv-lite has no compiled ``mmcv._ext``, but mmseg
   imports ``point_sample`` and ``sigmoid_focal_loss`` unconditionally).
   Active only when ``mmcv._ext`` cannot be found. Provides pure-PyTorch
   :func:`point_sample` and :func:`sigmoid_focal_loss`; any other name raises
   ``ModuleNotFoundError`` so mmseg's optional ``try: from mmcv.ops import X``
   guards keep working. With full mmcv installed nothing is replaced.
2. torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine
   checkpoints pickle numpy objects and ``HistoryBuffer``. An allowlist of
   the safe types mmengine writes is registered and every checkpoint mmengine
   reads goes through one safe loader (integrity checks, then
   ``weights_only=True``); a checkpoint carrying any other pickled global is
   refused with a clear ``UnsafeCheckpointError``. Implemented in
   :mod:`mmseg_contrast.checkpoint_safety` (and
   :mod:`mmseg_contrast.checkpoint_integrity`); its public names
   (``load_checkpoint_file``, ``UnsafeCheckpointError``, ``TRUSTED_ENV``, ...)
   are re-exported here.
3. ``pkg_resources`` (removed in setuptools 82) is required by mmengine
   0.10.7 to resolve ``mmseg::`` configs. We pin ``setuptools<81``; if it is
   missing anyway, an ``importlib.metadata`` backport is installed.
"""
import importlib
import importlib.util
import os
import sys
import types
import warnings

import torch
import torch.nn.functional as F

__all__ = [
    'apply', 'point_sample', 'sigmoid_focal_loss', 'UnsafeCheckpointError',
    'CorruptCheckpointError', 'CheckpointMismatchError',
    'safe_checkpoint_globals', 'load_checkpoint_file', 'APPLIED'
]

#: Names of the fixes that :func:`apply` actually installed.
APPLIED = []


# ---------------------------------------------------------------------------
# 1. mmcv.ops shim
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# 2. checkpoint loading on torch >= 2.6 (weights_only): see checkpoint_safety
# ---------------------------------------------------------------------------
#: names re-exported (lazily) from :mod:`mmseg_contrast.checkpoint_safety`
_SAFETY_NAMES = ('TRUSTED_ENV', 'UnsafeCheckpointError',
                 'CorruptCheckpointError', 'CheckpointMismatchError',
                 'safe_checkpoint_globals', 'load_checkpoint_file',
                 'install_checkpoint_allowlist')


def __getattr__(name):
    # lazy, so this module can still be loaded on its own (without the
    # package, e.g. to test the mmcv.ops shim against compiled ops)
    if name in _SAFETY_NAMES:
        from mmseg_contrast import checkpoint_safety
        return getattr(checkpoint_safety, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


# ---------------------------------------------------------------------------
# 3. pkg_resources backport (setuptools >= 82)
# ---------------------------------------------------------------------------
def _importlib_is_installed(package):
    import importlib.metadata as md
    try:
        md.distribution(package)
        return True
    except md.PackageNotFoundError:
        return importlib.util.find_spec(package) is not None


def _importlib_package2module(package):
    import importlib.metadata as md
    dist = md.distribution(package)
    top = dist.read_text('top_level.txt')
    if top:
        return top.split('\n')[0]
    raise ValueError(f'can not infer the module name of {package}')


def _importlib_get_installed_path(package):
    import importlib.metadata as md
    try:
        module = _importlib_package2module(package)
    except (md.PackageNotFoundError, ValueError):
        module = package
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f'{package} is not installed')
    return os.path.dirname(spec.origin)


def install_pkg_resources_backport():
    if importlib.util.find_spec('pkg_resources') is not None:
        return False
    import mmengine.config.config as cfg_mod
    import mmengine.utils as mu
    import mmengine.utils.package_utils as pu
    for mod in (pu, mu, cfg_mod):
        if hasattr(mod, 'is_installed'):
            mod.is_installed = _importlib_is_installed
        if hasattr(mod, 'get_installed_path'):
            mod.get_installed_path = _importlib_get_installed_path
        if hasattr(mod, 'package2module'):
            mod.package2module = _importlib_package2module
    return True


# ---------------------------------------------------------------------------
def apply():
    """Apply every fix the installed stack needs (idempotent)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        if install_mmcv_ops_shim() and 'mmcv_ops_shim' not in APPLIED:
            APPLIED.append('mmcv_ops_shim')
    from mmseg_contrast.checkpoint_safety import install_checkpoint_allowlist
    if install_checkpoint_allowlist() and \
            'checkpoint_allowlist' not in APPLIED:
        APPLIED.append('checkpoint_allowlist')
    if install_pkg_resources_backport() and \
            'pkg_resources_backport' not in APPLIED:
        APPLIED.append('pkg_resources_backport')
    return list(APPLIED)
