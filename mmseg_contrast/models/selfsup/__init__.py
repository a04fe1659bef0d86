"""Deprecated: moved to :mod:`mmseg_contrast.selfsup` (kept for one release).

A re-export, not an alias: the old submodules (``.densecl``,
``.seg_backbones``) are aliases of the new ones, which an aliased package
would shadow (its ``__path__`` would load them a second time)."""
from mmseg_contrast._deprecated import warn_moved
from mmseg_contrast.selfsup import *  # noqa: F403
from mmseg_contrast.selfsup import __all__  # noqa: F401

warn_moved(__name__, 'mmseg_contrast.selfsup')
