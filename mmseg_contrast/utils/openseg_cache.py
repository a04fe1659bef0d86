"""Deprecated: moved to :mod:`mmseg_contrast.checkpoint.openseg_cache`
(kept for one release); ``save_checkpoint`` is
:func:`mmseg_contrast.checkpoint.atomic_torch_save`."""
from mmseg_contrast._deprecated import warn_moved
from mmseg_contrast.checkpoint.openseg_cache import (
    converted_cache_path,
    load_maybe_converted,
)
from mmseg_contrast.checkpoint.saving import atomic_torch_save

save_checkpoint = atomic_torch_save

warn_moved(__name__, 'mmseg_contrast.checkpoint.openseg_cache')
__all__ = ['save_checkpoint', 'converted_cache_path', 'load_maybe_converted']
