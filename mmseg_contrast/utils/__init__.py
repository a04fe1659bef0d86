"""Deprecated (kept for one release): ``mmseg_contrast.utils`` was split into
:mod:`mmseg_contrast.checkpoint` (downloads, safe loading),
:mod:`mmseg_contrast.converters` (key mapping) and
:mod:`mmseg_contrast.tooling` (data preparation, analysis, publishing)."""
from mmseg_contrast._deprecated import warn_moved
from mmseg_contrast.checkpoint import (
    ChecksumError,
    DownloadError,
    download_checkpoint,
    register_url_scheme,
)
from mmseg_contrast.converters.mobilenetv2 import convert_deepsort_mobilenetv2
from mmseg_contrast.tooling import offline_data
from mmseg_contrast.tooling.offline_data import (
    cache_dir,
    prepare_aal_slices,
    prepare_all,
    prepare_mobilenetv2,
    prepare_voc_mini,
)

warn_moved(__name__, 'mmseg_contrast.checkpoint / .converters / .tooling')
__all__ = [
    'ChecksumError', 'DownloadError', 'download_checkpoint',
    'register_url_scheme', 'convert_deepsort_mobilenetv2', 'offline_data',
    'cache_dir', 'prepare_aal_slices', 'prepare_all', 'prepare_mobilenetv2',
    'prepare_voc_mini'
]
