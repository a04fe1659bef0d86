"""Cache directory, inter-process locks and manifests of the offline data.

Every step of :mod:`mmseg_contrast.tooling.data` is idempotent: a downloaded
file, an extracted package and a prepared data set each carry a marker /
manifest (file list with sizes) and are rebuilt only when it is missing or
incomplete. Builds happen in a temporary directory that is renamed into
place (:func:`build_into`), under a file lock (:func:`file_lock`), so
concurrent callers (e.g. parallel test sessions) never see half-written
data. :func:`prepare_once` ties the three together for one output.
"""
import contextlib
import fcntl
import json
import logging
import os
import os.path as osp
import shutil

__all__ = [
    'CACHE_ENV', 'MANIFEST', 'VERSIONS', 'OfflineDataError', 'cache_dir',
    'file_lock', 'is_prepared', 'write_manifest', 'build_into',
    'prepare_once'
]

logger = logging.getLogger(__name__)

CACHE_ENV = 'MMSEG_CONTRAST_CACHE'
MANIFEST = '.mmseg_contrast_manifest.json'

#: Output version per kind; bump one when its preparer's output changes, so
#: old copies get rebuilt.
VERSIONS = dict(voc_mini=1, aal_slices=1, mobilenetv2=1, fashion_canvas=2)


class OfflineDataError(RuntimeError):
    """A registry download or a data preparation step failed."""


def cache_dir():
    """Directory for raw downloads: ``$MMSEG_CONTRAST_CACHE`` or
    ``~/.cache/mmseg_contrast`` (created if needed)."""
    path = os.environ.get(CACHE_ENV) or osp.join(
        osp.expanduser('~'), '.cache', 'mmseg_contrast')
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path):
    """Exclusive inter-process lock on ``path + '.lock'`` (the file is
    created, with its directory, if needed)."""
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


def write_manifest(root, kind, **extra):
    """Record every file under ``root`` (with its size) as a ``kind``
    output of the current version, plus ``extra`` fields."""
    manifest = dict(kind=kind, version=VERSIONS.get(kind, 1),
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
                             manifest.get('version') != VERSIONS.get(kind)):
        return False
    for rel, size in manifest['files'].items():
        full = osp.join(root, rel)
        if not osp.isfile(full) or osp.getsize(full) != size:
            return False
    return True


@contextlib.contextmanager
def build_into(final):
    """Yield a fresh temporary directory that replaces ``final`` on success
    (and is removed on failure)."""
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


def prepare_once(kind, root, build):
    """Run ``build(tmp_dir)`` unless ``root`` already holds a complete
    ``kind`` output; the build goes to a temporary directory renamed to
    ``root``, under a lock on ``root``, and its returned dict (if any) is
    recorded in the manifest.

    Returns:
        bool: True if it built, False if ``root`` was already complete.
    """
    with file_lock(root):
        if is_prepared(root, kind):
            logger.info('%s: cached at %s', kind, root)
            return False
        logger.info('%s: preparing %s', kind, root)
        with build_into(root) as tmp:
            extra = build(tmp) or {}
            write_manifest(tmp, kind, **extra)
    logger.info('%s: ready at %s', kind, root)
    return True
