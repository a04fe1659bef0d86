"""Deprecated alias of :mod:`mmseg_contrast.tooling.offline_data` (itself a
re-export of :mod:`mmseg_contrast.tooling.data`; kept for one release)."""
from mmseg_contrast._deprecated import alias_module

alias_module(__name__, 'mmseg_contrast.tooling.offline_data')
