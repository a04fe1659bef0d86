"""mmseg_contrast: pixel-level contrastive learning for MMSegmentation 1.x.

Importing the package first installs the compatibility layer
(:func:`mmseg_contrast._compat.apply`, the one list of patches), then
registers every module into mmseg's registries (``mmseg.registry.MODELS``,
``HOOKS``, ``DATASETS``, ...) and, for DenseCL pre-training, into
mmpretrain's (:mod:`mmseg_contrast.selfsup`).

Layers (each imports only those listed before it; enforced by
``tests/test_layout``): :mod:`.checkpoint` and :mod:`.converters` (runtime
checkpoint I/O), :mod:`._compat`, then :mod:`.datasets`, :mod:`.models`,
:mod:`.engine`, :mod:`.selfsup`. :mod:`.tooling` (data preparation, analysis,
publishing) is used by ``tools/`` and never imported by the runtime.
"""
from . import _compat

_compat.apply()

from . import datasets, engine, models, selfsup  # noqa: F401
from .version import __version__, version_info

__all__ = ['__version__', 'version_info']
