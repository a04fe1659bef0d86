"""Integrity of checkpoint files, checked before anything is unpickled.

:func:`verify_checkpoint_file` is called by the safe loader
(:func:`mmseg_contrast.checkpoint.safety.load_checkpoint_file`) on every
checkpoint it reads. It turns the silent or cryptic failures of
``torch.load`` on a damaged file into one :class:`CorruptCheckpointError`
that names the file, what is wrong and what to do:

* an empty file (``torch.load``: bare ``EOFError``);
* a file that is no PyTorch checkpoint at all, e.g. a text or HTML error page
  saved under a ``.pth`` name (``torch.load``: ``IndexError: pop from empty
  list`` or ``KeyError``);
* a truncated zip archive, i.e. a torch >= 1.6 checkpoint whose end is
  missing (an interrupted copy or download);
* a zip archive whose records do not match their CRC-32: ``torch.load`` does
  not check CRCs, so e.g. 512 random bytes inside a stored tensor load
  silently as weights of 1e38;
* a file whose name carries a sha256 prefix (OpenMMLab / torch.hub style
  ``<name>-<8+ hex>.pth``, parsed by
  :func:`mmseg_contrast.checkpoint.naming.hash_prefix_from_url`) but whose
  content hashes differently.

The check is one sequential pass over the file (through a read-only memory
map, or reads of 1 MiB blocks for file objects without one): every block
updates the CRC-32 of the zip record(s) it overlaps and, only when the name
carries a hash, the sha256. The zip central directory (at the end of the
file) gives the records' offsets and stored CRCs. Files saved with
``torch.serialization.set_crc32_options(False)`` store a CRC of 0 for every
record; they are recognised as such and only their structure is checked.

Legacy (non-zip, torch < 1.6 ``_use_new_zipfile_serialization=False``)
checkpoints carry no checksum: their header (the pickled torch magic
number) is checked and they are still loaded with ``weights_only=True``,
but damage inside their tensor data cannot be detected (only a name hash
can, when there is one). The tar checkpoints of torch < 0.4 are recognised
(``'tar'``); no ``weights_only`` load can read them (see
:func:`mmseg_contrast.checkpoint.safety.load_checkpoint_file`).

torch.save never compresses zip records, but torch reads deflated ones,
whole, into memory: with ``max_inflated`` set (the safe loader sets it
unless the file is trusted), compressed records may not expand beyond
:data:`~mmseg_contrast.checkpoint.bounds.MAX_EXPANSION` times their size
or ``max_inflated`` bytes, whichever is larger
(:func:`~mmseg_contrast.checkpoint.bounds.check_compressed_records`,
checked before anything is decompressed). Two records of the same name
(only one of which torch would read) are refused.
"""
import hashlib
import io
import mmap
import os
import struct
import zipfile
import zlib
from typing import List, NamedTuple, Optional

from .bounds import check_compressed_records
from .errors import CorruptCheckpointError
from .naming import hash_prefix_of
from .saving import atomic_torch_save

__all__ = [
    'CorruptCheckpointError', 'verify_checkpoint_file', 'inspect_checkpoint',
    'CheckpointLayout', 'checkpoint_kind', 'hash_prefix_of',
    'atomic_torch_save'
]

BLOCK = 1 << 20
MAP_BLOCK = 16 << 20
ZIP_LOCAL_MAGIC = b'PK\x03\x04'
#: ``torch.save`` (legacy format) first pickles this magic number
LEGACY_MAGIC = (0x1950a86a20f9469cfc6c).to_bytes(10, 'little')
_REDOWNLOAD = ('Re-download or re-create the file (a bad copy, a full disk '
               'or an interrupted write or download leave such files).')


class CheckpointLayout(NamedTuple):
    """What :func:`inspect_checkpoint` found: ``kind`` (``'zip'``,
    ``'legacy'`` or ``'tar'``), the file ``size``, and for zip files the
    records (``infos``) and the ``(start, end, info)`` byte ranges of the
    stored ones."""
    kind: str
    size: int
    infos: List[zipfile.ZipInfo]
    ranges: list



def _size(f) -> int:
    pos = f.tell()
    f.seek(0, io.SEEK_END)
    size = f.tell()
    f.seek(pos)
    return size


def checkpoint_kind(head: bytes) -> Optional[str]:
    """``'zip'``, ``'legacy'``, ``'tar'`` or None (not a checkpoint), from
    the first 512 bytes of a file."""
    if head.startswith(ZIP_LOCAL_MAGIC):
        return 'zip'
    # legacy: protocol-2+ pickle (``\x80``) of the torch magic number
    if head[:1] == b'\x80' and LEGACY_MAGIC in head[:32]:
        return 'legacy'
    if head[257:262] == b'ustar':  # torch < 0.4 tar checkpoints
        return 'tar'
    return None


def _zip_records(f, size: int, name: str):
    """``(ZipInfo list to check by CRC, stored-record ranges)``."""
    try:
        zf = zipfile.ZipFile(f)
        infos = zf.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError, struct.error) as e:
        raise CorruptCheckpointError(
            f'Checkpoint {name} is truncated or damaged: it starts like a '
            f'zip archive (the torch >= 1.6 checkpoint format) but its zip '
            f'directory is unreadable ({e}); the end of the file is most '
            f'likely missing ({size} bytes). {_REDOWNLOAD}') from None
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise CorruptCheckpointError(
            f'Checkpoint {name} is damaged or crafted: its zip archive holds '
            f'several records named {twice[0]!r} (torch.save writes each '
            f'once, and torch would read only one of them). {_REDOWNLOAD}')
    ranges, compressed = [], []
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            compressed.append(info)
            continue
        hdr = b''
        if 0 <= info.header_offset < size:
            f.seek(info.header_offset)
            hdr = f.read(30)
        if len(hdr) < 30 or not hdr.startswith(ZIP_LOCAL_MAGIC):
            raise CorruptCheckpointError(
                f'Checkpoint {name} is damaged: the zip header of record '
                f'{info.filename!r} (offset {info.header_offset}) is '
                f'invalid. {_REDOWNLOAD}')
        nlen, elen = struct.unpack('<HH', hdr[26:30])
        start = info.header_offset + 30 + nlen + elen
        end = start + info.compress_size
        if end > size:
            raise CorruptCheckpointError(
                f'Checkpoint {name} is truncated: record {info.filename!r} '
                f'ends at byte {end} but the file has {size} bytes. '
                f'{_REDOWNLOAD}')
        ranges.append((start, end, info))
    ranges.sort(key=lambda r: r[0])
    return zf, ranges, compressed


def _blocks(f):
    """``(offset, block)`` over the whole file: slices of a read-only
    memory map of a real file (no copy out of the page cache), else reads
    of :data:`BLOCK` bytes."""
    try:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        m = None
    if m is not None:
        view = memoryview(m)
        try:
            for pos in range(0, len(view), MAP_BLOCK):
                block = view[pos:pos + MAP_BLOCK]
                yield pos, block
                block.release()
        finally:
            try:
                view.release()
                m.close()
            except BufferError:  # a slice outlives an error: closed by gc
                pass
        return
    f.seek(0)
    pos = 0
    while True:
        block = f.read(BLOCK)
        if not block:
            return
        yield pos, memoryview(block)
        pos += len(block)


def _scan(f, ranges, digest):
    """One sequential pass: CRC-32 of every range, sha256 of everything."""
    crcs = [0] * len(ranges)
    first = 0
    for pos, view in _blocks(f):
        end = pos + len(view)
        if digest is not None:
            digest.update(view)
        while first < len(ranges) and ranges[first][1] <= pos:
            first += 1
        j = first
        while j < len(ranges) and ranges[j][0] < end:
            lo, hi = max(ranges[j][0], pos), min(ranges[j][1], end)
            if lo < hi:
                crcs[j] = zlib.crc32(view[lo - pos:hi - pos], crcs[j])
            j += 1
    return crcs


def verify_checkpoint_file(f, name: Optional[str] = None,
                           sha256_prefix: Optional[str] = None) -> str:
    """Check a checkpoint file before it is unpickled.

    Args:
        f (str | os.PathLike | file object): a path or a seekable binary file
            object (left at position 0).
        name (str, optional): how the file is called in errors (default: the
            path, or the file object's ``name``).
        sha256_prefix (str, optional): the hex prefix the file's sha256 must
            start with (from :func:`hash_prefix_of`).

    Returns:
        str: ``'zip'``, ``'legacy'`` or ``'tar'``.

    Raises:
        CorruptCheckpointError: see the module docstring.
    """
    return inspect_checkpoint(f, name, sha256_prefix).kind


def inspect_checkpoint(f, name: Optional[str] = None,
                       sha256_prefix: Optional[str] = None, *,
                       max_inflated: Optional[int] = None
                       ) -> CheckpointLayout:
    """:func:`verify_checkpoint_file`, returning the file's layout.

    Args:
        max_inflated (int, optional): bound the expansion of compressed zip
            records (see the module docstring); None: no bound.

    Raises:
        CorruptCheckpointError: see the module docstring.
        UnsafeCheckpointError: compressed records over the bound.
    """
    if isinstance(f, (str, os.PathLike)):
        name = name or os.fspath(f)
        with open(f, 'rb') as fh:
            return inspect_checkpoint(fh, name, sha256_prefix,
                                      max_inflated=max_inflated)
    name = name or str(getattr(f, 'name', '<in-memory checkpoint>'))
    size = _size(f)
    f.seek(0)
    head = f.read(512)
    if size == 0:
        raise CorruptCheckpointError(
            f'Checkpoint {name} is empty (0 bytes). {_REDOWNLOAD}')
    kind = checkpoint_kind(head)
    if kind is None:
        hint = ' (it looks like text, e.g. an HTML error page or a Git ' \
            'LFS pointer)' if _is_text(head) else ''
        raise CorruptCheckpointError(
            f'Checkpoint {name} is not a PyTorch checkpoint{hint}: it is '
            f'neither a zip archive (torch >= 1.6 format) nor a legacy torch '
            f'file; it starts with {head[:16]!r} ({size} bytes).')
    ranges, compressed, zf, infos = [], [], None, []
    if kind == 'zip':
        zf, ranges, compressed = _zip_records(f, size, name)
        infos = zf.infolist()
        if max_inflated is not None:
            check_compressed_records(compressed, name, max_inflated)
    digest = hashlib.sha256() if sha256_prefix else None
    if ranges or digest is not None:
        crcs = _scan(f, ranges, digest)
        if any(r[2].CRC for r in ranges):  # else saved without CRC-32s
            for (_, _, info), crc in zip(ranges, crcs):
                if crc != info.CRC:
                    raise CorruptCheckpointError(
                        f'Checkpoint {name} is corrupted: record '
                        f'{info.filename!r} fails its CRC-32 check (stored '
                        f'{info.CRC:08x}, computed {crc:08x}), so its '
                        f'content is not what was saved. {_REDOWNLOAD}')
    for info in compressed:  # not written by torch; zipfile checks the CRC
        try:
            with zf.open(info) as member:
                while member.read(BLOCK):
                    pass
        except (zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise CorruptCheckpointError(
                f'Checkpoint {name} is corrupted: record {info.filename!r} '
                f'cannot be read back ({e}). {_REDOWNLOAD}') from None
    if digest is not None:
        got = digest.hexdigest()
        if not got.startswith(sha256_prefix.lower()):
            raise CorruptCheckpointError(
                f'Checkpoint {name} fails its checksum: the file name '
                f'promises sha256 {sha256_prefix}..., the content hashes to '
                f'{got[:len(sha256_prefix)]}... ({size} bytes). The file is '
                f'corrupted or truncated, or it was renamed after another '
                f'file: re-download it, or remove the -<hash> suffix from '
                f'the name of a file you made yourself.')
    f.seek(0)
    return CheckpointLayout(kind, size, infos, ranges)


def _is_text(head: bytes) -> bool:
    try:
        head.decode('utf-8')
    except UnicodeDecodeError:
        return False
    return True
