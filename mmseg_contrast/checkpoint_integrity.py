"""Deprecated alias of :mod:`mmseg_contrast.checkpoint.integrity`
(kept for one release)."""
from mmseg_contrast._deprecated import alias_module

alias_module(__name__, 'mmseg_contrast.checkpoint.integrity')
