"""mmseg_contrast: pixel-level contrastive learning for MMSegmentation 1.x.

Importing the package first applies the compatibility layer
(:mod:`mmseg_contrast._compat`, and :mod:`mmseg_contrast._compat_dist` for
CPU-only multi-process training), then registers every module into mmseg's
registries (``mmseg.registry.MODELS``, ``HOOKS``, ``DATASETS``, ...).
"""
from . import _compat, _compat_dist

_compat.apply()
if _compat_dist.apply() and 'cpu_dist' not in _compat.APPLIED:
    _compat.APPLIED.append('cpu_dist')

from .version import __version__, version_info  # noqa: E402

from . import datasets, engine, models  # noqa: E402,F401
from . import utils  # noqa: E402,F401  (checksummed http(s) checkpoint loader)

__all__ = ['__version__', 'version_info']
