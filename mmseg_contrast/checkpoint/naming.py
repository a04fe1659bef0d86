"""Hash-in-file-name rules (stdlib only; the leaf of :mod:`.checkpoint`).

OpenMMLab model-zoo files and torch.hub files are named
``<name>-<sha256 prefix>.<ext>`` (8 hex digits for OpenMMLab, 8-10 for
torchvision). A suffix that reads as a release date (``x-20210302.pth``) is
not a hash prefix: reading it as one would delete a valid file as
"corrupted". Every part of the project that asks "does this name promise a
hash?" asks here.
"""
import os
import os.path as osp
import re
from typing import Optional
from urllib.parse import quote, urlparse

__all__ = [
    'HASH_REGEX', 'is_date', 'hash_prefix_from_url', 'hash_prefix_of',
    'is_hashed_weights_url'
]

#: ``<anything>-<hex>.<ext>``: the hash prefix torch.hub/OpenMMLab put in
#: file names.
HASH_REGEX = re.compile(r'-([a-f0-9]{8,64})\.[A-Za-z0-9]+$')
#: a model-zoo weights URL: ``http(s)://.../<name>-<8 hex>.pth``
_WEIGHTS_URL = re.compile(r'^https?://\S+/[^/\s]+-([0-9a-f]{8})\.pth$')


def is_date(digits: str) -> bool:
    """``YYYYMMDD`` (1970-2099): a release date, not a sha256 prefix."""
    if len(digits) != 8 or not digits.isdigit():
        return False
    y, m, d = int(digits[:4]), int(digits[4:6]), int(digits[6:])
    return 1970 <= y <= 2099 and 1 <= m <= 12 and 1 <= d <= 31


def hash_prefix_from_url(url: str) -> Optional[str]:
    """The sha256 prefix encoded in the URL's file name, or None."""
    name = osp.basename(urlparse(url).path)
    m = HASH_REGEX.search(name)
    if m is None or is_date(m.group(1)):
        return None
    return m.group(1)


def hash_prefix_of(path) -> Optional[str]:
    """The sha256 prefix promised by a local file's name, or None.

    The name is URL-quoted first so ``#`` or ``?`` in a local name cannot
    hide it.
    """
    return hash_prefix_from_url(quote(osp.basename(os.fspath(path))))


def is_hashed_weights_url(url: str) -> bool:
    """A model-zoo weights URL, ``http(s)://.../<name>-<sha256[:8]>.pth``,
    whose suffix is a hash and not a date (checked on download)."""
    m = _WEIGHTS_URL.match(url)
    return m is not None and not is_date(m.group(1))
