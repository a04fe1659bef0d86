"""Checksummed, resumable checkpoint downloads for ``http(s)://`` URLs.

OpenMMLab model-zoo files are named ``<name>-<sha256[:8]>.pth`` (torchvision
uses the same convention). :func:`download_checkpoint` downloads such a URL
into the torch hub cache (``torch.hub.get_dir()/checkpoints``, i.e.
``$TORCH_HOME/hub/checkpoints``) and guarantees that what ends up there is the
file the name promises:

* the download goes to ``<file>.partial`` and is renamed only after the
  sha256 of the whole file starts with the prefix in the name; a corrupted or
  truncated download is **deleted** and reported with
  :class:`ChecksumError`, it is never loaded;
* an interrupted transfer (connection dropped, ``Content-Length`` not
  reached) is resumed with an HTTP ``Range`` request, also across runs (the
  ``.partial`` file is kept); servers without range support restart from
  byte 0; after ``retries`` failed attempts a :class:`DownloadError` says
  what happened and where to put the file by hand;
* a URL ending in ``/`` (a folder: a server answers it with an HTML
  listing) is refused before any request, and a download that is no
  checkpoint (an HTML listing, login or error page served with HTTP 200)
  is deleted and reported with :class:`DownloadError`: nothing of either
  stays in the cache;
* the cache is keyed by the full URL: ``<cache>/<sha256(url)[:16]>/<name>``
  (two URLs with the same file name never share an entry); a file already
  there is verified and used without any network request, so a warm cache
  works offline. A hash-named file that sits directly in ``<cache>`` (the
  torch.hub / mmengine layout) and matches its hash is reused as well;
* a checkpoint in the ContrastiveSeg authors' (openseg.pytorch) layout is
  converted to mmseg keys once and the conversion cached next to it
  (:mod:`mmseg_contrast.converters.openseg`,
  :mod:`mmseg_contrast.checkpoint.openseg_cache`);
* under ``torch.distributed`` the local rank 0 of each node downloads first,
  the other ranks wait at a barrier and then read the cache.

:func:`register_url_scheme` (one of the patches
:func:`mmseg_contrast._compat.apply` installs on ``import mmseg_contrast``)
installs :func:`load_from_http`
as mmengine's ``http://``/``https://`` checkpoint loader, so
``tools/test.py CONFIG URL``, ``load_from=URL`` and
``init_cfg=dict(type='Pretrained', checkpoint=URL)`` all go through it. The
``torchvision://``, ``open-mmlab://`` and ``mmcls://`` schemes, which resolve
to an URL and call mmengine's ``load_from_http``, use it as well. The file is
then read with :func:`mmseg_contrast.checkpoint.safety.load_checkpoint_file`
(``weights_only=True`` plus the safe allowlist), unlike mmengine's default
URL loader, which unpickles downloaded files without restriction.

URLs whose file name carries no ``-<hex>`` suffix (e.g. Hugging Face files,
or a ``-YYYYMMDD`` date) cannot be verified; they are downloaded with the
same resume logic and a warning, unless ``MMSEG_CONTRAST_REQUIRE_HASH=1``
is set, which refuses them.
"""
import hashlib
import http.client
import os
import os.path as osp
import re
import socket
import sys
import time
import urllib.error
import urllib.request
import warnings
from typing import Optional
from urllib.parse import urlparse

import mmengine.runner.checkpoint as ckpt_mod
import torch.hub
from mmengine.dist import barrier, get_dist_info, get_local_rank
from mmengine.runner.checkpoint import CheckpointLoader

from ..converters.openseg import OpenSegLayoutError
from .errors import ChecksumError, DownloadError
from .integrity import checkpoint_kind
from .naming import hash_prefix_from_url
from .openseg_cache import load_maybe_converted
from .progress import Progress

__all__ = [
    'ChecksumError', 'DownloadError', 'hash_prefix_from_url', 'sha256sum',
    'default_cache_dir', 'url_cache_path', 'download_checkpoint',
    'load_from_http', 'register_url_scheme'
]

REQUIRE_HASH_ENV = 'MMSEG_CONTRAST_REQUIRE_HASH'
CHUNK_SIZE = 1 << 16


def url_cache_path(url: str, model_dir: Optional[str] = None) -> str:
    """Where ``url`` is cached: ``<model_dir>/<sha256(url)[:16]>/<name>``.

    Keyed by the full URL, so two URLs with the same file name (``.../a/
    good.pth``, ``.../b/good.pth``) never share a cache entry.
    """
    name = osp.basename(urlparse(url).path)
    key = hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]
    return osp.join(model_dir or default_cache_dir(), key, name)


def sha256sum(path: str) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> str:
    """``torch.hub.get_dir()/checkpoints`` (honours ``$TORCH_HOME``)."""
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def _verify(path: str, prefix: str, url: str, what: str) -> None:
    digest = sha256sum(path)
    if not digest.startswith(prefix):
        size = osp.getsize(path)
        os.remove(path)
        raise ChecksumError(
            f'Checksum mismatch for {what} {url}: the file name promises '
            f'sha256 {prefix}..., got {digest[:len(prefix)]}... '
            f'({size} bytes; the file is corrupted or truncated). It was '
            f'deleted and NOT loaded; download it again, or check that the '
            f'URL points at the file it names.')


def _transfer(url: str, partial: str, timeout: float, progress: bool,
              name: str) -> None:
    """One attempt: (resume and) write the body into ``partial``.

    Raises ``OSError``/``http.client`` errors on network failures and
    ``_Incomplete`` when the body ended before ``Content-Length``.
    """
    have = osp.getsize(partial) if osp.exists(partial) else 0
    headers = {'User-Agent': 'mmseg_contrast'}
    if have:
        headers['Range'] = f'bytes={have}-'
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # requested range not satisfiable: our partial file is not a
            # prefix the server knows about; start again from byte 0.
            os.remove(partial)
            raise _Incomplete('server refused to resume (HTTP 416); '
                              'restarting from the beginning')
        raise
    with resp:
        status = resp.status
        if have and status == 206:
            content_range = resp.headers.get('Content-Range', '')
            m = re.match(r'bytes (\d+)-', content_range)
            if not m or int(m.group(1)) != have:
                os.remove(partial)
                raise _Incomplete(f'server sent an unexpected range '
                                  f'{content_range!r}; restarting')
            mode = 'ab'
        else:  # 200: server ignored Range (or nothing to resume)
            have, mode = 0, 'wb'
        length = resp.headers.get('Content-Length')
        expected = have + int(length) if length is not None else None
        bar = Progress(progress, name, expected, have)
        written = have
        try:
            with open(partial, mode) as f:
                while True:
                    chunk = resp.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    f.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
    if expected is not None and written < expected:
        raise _Incomplete(f'connection closed after {written} of '
                          f'{expected} bytes')


class _Incomplete(Exception):
    pass


def download_checkpoint(url: str,
                        model_dir: Optional[str] = None,
                        progress: Optional[bool] = None,
                        retries: int = 3,
                        retry_delay: float = 1.0,
                        timeout: float = 60.0,
                        allow_download: bool = True) -> str:
    """Download ``url`` into the cache (if needed) and return the local path.

    Args:
        url: ``http(s)://.../<name>-<sha256 prefix>.pth``.
        model_dir: cache folder; default ``torch.hub.get_dir()/checkpoints``.
        progress: show a byte progress bar; default: when stderr is a tty.
        retries: attempts for network failures/interrupted transfers (each
            retry resumes the partial file).
        retry_delay: seconds before the first retry, doubled each time.
        timeout: socket timeout per request, seconds.
        allow_download: if False only the cache is used (what non-zero ranks
            do after rank 0 downloaded).

    Raises:
        ChecksumError: the file does not match the hash in its name (it has
            been deleted).
        DownloadError: the server could not be reached / kept failing, or
            the URL has no hash while ``MMSEG_CONTRAST_REQUIRE_HASH=1``.
    """
    parts = urlparse(url)
    if parts.scheme not in ('http', 'https') or not parts.path.strip('/'):
        raise DownloadError(f'Not a downloadable checkpoint URL: {url!r}')
    name = osp.basename(parts.path)
    if not name:
        raise DownloadError(
            f'{url} is not the URL of a checkpoint file: its path ends with '
            f'"/", so it names a folder, and a server answers it with an '
            f'HTML page (a listing), not a checkpoint. Give the URL of the '
            f'.pth file itself. Nothing was downloaded.')
    model_dir = model_dir or default_cache_dir()
    dest = url_cache_path(url, model_dir)
    os.makedirs(osp.dirname(dest), exist_ok=True)
    partial = dest + '.partial'
    prefix = hash_prefix_from_url(url)
    if prefix is None:
        if os.environ.get(REQUIRE_HASH_ENV, '') == '1':
            raise DownloadError(
                f'{url} has no -<sha256 prefix> in its file name, so it '
                f'cannot be verified, and {REQUIRE_HASH_ENV}=1 is set.')
        warnings.warn(
            f'{name} has no -<sha256 prefix> in its name; the download '
            f'cannot be verified.')

    if osp.isfile(dest):  # cache hit: no network at all
        if prefix is not None:
            _verify(dest, prefix, url, 'cached file')
        return dest
    flat = osp.join(model_dir, name)  # torch.hub / mmengine cache layout
    if prefix is not None and osp.isfile(flat) and \
            sha256sum(flat).startswith(prefix):
        return flat  # same bytes whichever URL put it there
    if not allow_download:
        raise DownloadError(
            f'{name} is not in the cache {model_dir} (the process that was '
            f'meant to download {url} failed; see its error).')

    resumed_old_partial = osp.isfile(partial)
    if resumed_old_partial and prefix is not None and \
            sha256sum(partial).startswith(prefix):
        os.replace(partial, dest)  # complete, only the rename was missed
        return dest
    if progress is None:
        progress = sys.stderr.isatty()
    delay = retry_delay
    last_error = None
    for attempt in range(1, max(1, retries) + 1):
        try:
            _transfer(url, partial, timeout, progress, name)
            last_error = None
            break
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500 and e.code not in (408, 429):
                raise DownloadError(
                    f'Cannot download {url}: HTTP {e.code} {e.reason} '
                    f'(not retried).') from None
            last_error = f'HTTP {e.code} {e.reason}'
        except _Incomplete as e:
            last_error = str(e)
        except (urllib.error.URLError, http.client.HTTPException,
                socket.timeout, ConnectionError, OSError) as e:
            reason = getattr(e, 'reason', None) or e
            last_error = f'{type(e).__name__}: {reason}'
        if attempt < retries:
            have = osp.getsize(partial) if osp.exists(partial) else 0
            warnings.warn(
                f'Download of {url} failed (attempt {attempt}/{retries}: '
                f'{last_error}); retrying in {delay:g}s'
                + (f', resuming at byte {have}' if have else '') + '.')
            time.sleep(delay)
            delay *= 2
    if last_error is not None:
        have = osp.getsize(partial) if osp.exists(partial) else 0
        raise DownloadError(
            f'Cannot download {url} after {retries} attempt(s): '
            f'{last_error}. '
            + (f'{have} bytes are kept in {partial} and the next run resumes '
               f'from there. ' if have else '')
            + f'To work offline, put the file at {dest}.')

    try:
        _refuse_non_checkpoint(partial, url, dest)
        if prefix is not None:
            _verify(partial, prefix, url, 'download of')
    except (ChecksumError, DownloadError):
        if not resumed_old_partial:
            raise
        # the kept .partial may belong to an older version of the file:
        # it has been deleted, so try once more from byte 0
        warnings.warn(f'{name}: the download resumed from an earlier run '
                      f'failed the checksum; downloading it again from the '
                      f'start.')
        return download_checkpoint(url, model_dir, progress, retries,
                                   retry_delay, timeout, allow_download)
    os.replace(partial, dest)
    return dest


def _refuse_non_checkpoint(partial: str, url: str, dest: str) -> None:
    """Delete a download that is no checkpoint (an HTML listing, login or
    error page served with HTTP 200) and say so; nothing stays cached."""
    with open(partial, 'rb') as f:
        head = f.read(512)
    if checkpoint_kind(head) is not None:
        return
    size = osp.getsize(partial)
    os.remove(partial)
    try:  # the URL's cache folder, if nothing else is in it
        os.rmdir(osp.dirname(dest))
    except OSError:
        pass
    start = head.lstrip()[:15].lower()
    what = 'an HTML page' if start.startswith((b'<!doctype html', b'<html')) \
        else 'a file that is no PyTorch checkpoint'
    raise DownloadError(
        f'{url} is not a checkpoint file: the server sent {what} ({size} '
        f'bytes, starting {head[:40]!r}), e.g. a folder listing, a login or '
        f'an error page. It was deleted; nothing is kept in the cache '
        f'({osp.dirname(dest)}). Check that the URL points at the .pth '
        f'file itself.')


def _local_rank(rank, get_local_rank):
    try:  # mmengine's local group (set up by its launcher)
        return get_local_rank()
    except RuntimeError:  # torchrun / slurm set LOCAL_RANK
        return int(os.environ.get('LOCAL_RANK', rank))


def load_from_http(filename: str,
                   map_location=None,
                   model_dir: Optional[str] = None,
                   progress: Optional[bool] = None):
    """mmengine ``CheckpointLoader`` scheme for ``http://``/``https://``.

    Local rank 0 of every node downloads first (verified, resumable); the
    other ranks wait at a barrier and read the cached file. The file is
    loaded with the safe allowlist loader of
    :mod:`mmseg_contrast.checkpoint.safety`.
    A checkpoint in the ContrastiveSeg / openseg.pytorch layout is converted
    to mmseg keys and the conversion cached next to it
    (:func:`mmseg_contrast.checkpoint.openseg_cache.load_maybe_converted`).
    """
    rank, world_size = get_dist_info()
    local_rank = _local_rank(rank, get_local_rank) if world_size > 1 else 0
    ckpt, error = None, None
    if local_rank == 0:
        try:
            path = download_checkpoint(
                filename, model_dir=model_dir, progress=progress)
            ckpt = load_maybe_converted(path, map_location=map_location,
                                        check_hash=False)
        except (ChecksumError, DownloadError, OpenSegLayoutError) as e:
            error = e
    if world_size > 1:
        barrier()
    if error is not None:
        raise error
    if ckpt is None:  # the other ranks: read what local rank 0 cached
        path = download_checkpoint(
            filename, model_dir=model_dir, allow_download=False)
        # the sha256 in the name was just verified by download_checkpoint
        ckpt = load_maybe_converted(path, map_location=map_location,
                                    check_hash=False)
    return ckpt


def register_url_scheme() -> None:
    """Make :func:`load_from_http` mmengine's http(s) checkpoint loader.

    Also rebinds ``mmengine.runner.checkpoint.load_from_http``, which the
    ``torchvision://``, ``open-mmlab://`` and ``mmcls://`` loaders call.
    Idempotent; returns True.
    """
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http, force=True)
    ckpt_mod.load_from_http = load_from_http
    return True
