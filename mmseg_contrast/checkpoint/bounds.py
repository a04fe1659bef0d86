"""Resource bounds of checkpoint loading, checked before anything is
unpickled (used by :func:`mmseg_contrast.checkpoint.safety.
load_checkpoint_file` unless ``MMSEG_CONTRAST_TRUSTED_CKPT=1``).

``weights_only`` stops code, not size: a 1.8 KB pickle of
``set(range(N))`` or ``bytearray(2e9)``, a numpy ``_reconstruct`` of shape
``(2**33,)``, or a 1 MB zip whose ``data.pkl`` deflates to 1 GiB all took
gigabytes (or raised a raw ``MemoryError``). Two bounds apply:

* **objects outside the tensors**: the containers, strings, byte buffers
  and numpy arrays the pickle builds (its tensors' storages are not
  counted) may take at most ``MMSEG_CONTRAST_CKPT_OBJECT_LIMIT_MB`` MiB
  (default :data:`DEFAULT_OBJECT_LIMIT_MB` = 64) **plus**
  :data:`~mmseg_contrast.checkpoint.scan_values.PICKLE_FACTOR` (4) bytes
  per byte of pickle read so far. A checkpoint's own data (a history
  buffer's log, a numpy array in ``meta``) costs about 3 bytes per byte of
  pickle, so only constructs that multiply memory reach the limit. The
  pickle is walked first (:mod:`mmseg_contrast.checkpoint.pickle_scan`):
  nothing is built or run;
* **compressed zip records** (torch.save never writes them; torch reads
  each whole into memory) may expand to at most :data:`MAX_EXPANSION`
  times their compressed size or the object limit, whichever is larger.

Each refusal is one :class:`UnsafeCheckpointError` naming the file and
what was refused; a legacy file whose storages claim more tensor data than
it holds is a :class:`CorruptCheckpointError`. Nothing is cached: the
limit is read from the environment on every load.
"""
import io
import mmap
import os
import zipfile

from .errors import CorruptCheckpointError, UnsafeCheckpointError
from .pickle_scan import PickleScan
from .scan_values import PICKLE_FACTOR, ScanRefusal

__all__ = [
    'OBJECT_LIMIT_ENV', 'DEFAULT_OBJECT_LIMIT_MB', 'MAX_EXPANSION',
    'TRUSTED_ENV', 'object_limit', 'check_compressed_records',
    'check_pickle_bounds'
]

TRUSTED_ENV = 'MMSEG_CONTRAST_TRUSTED_CKPT'
OBJECT_LIMIT_ENV = 'MMSEG_CONTRAST_CKPT_OBJECT_LIMIT_MB'
DEFAULT_OBJECT_LIMIT_MB = 64
MAX_EXPANSION = 20
#: pickles a legacy (non-zip) file holds: magic number, protocol, system
#: info, the object, the storage keys
_LEGACY_PICKLES = 5
_MIB = 1 << 20


def object_limit() -> int:
    """The object limit in bytes (``MMSEG_CONTRAST_CKPT_OBJECT_LIMIT_MB``,
    a positive number of MiB; default 64)."""
    raw = os.environ.get(OBJECT_LIMIT_ENV, '').strip()
    if not raw:
        return DEFAULT_OBJECT_LIMIT_MB * _MIB
    try:
        mib = float(raw)
    except ValueError:
        mib = -1.0
    if not mib > 0:
        raise ValueError(f'{OBJECT_LIMIT_ENV}={raw!r}: expected a positive '
                         f'number of MiB (default {DEFAULT_OBJECT_LIMIT_MB})')
    return int(mib * _MIB)


def _mib(n):
    return f'{n / _MIB:,.1f} MiB' if n >= _MIB else f'{n:,} bytes'


def _trust_hint(limit=True):
    raise_it = (f', or raise {OBJECT_LIMIT_ENV} (now '
                f'{object_limit() / _MIB:g})') if limit else ''
    return (f'If you trust this file, set {TRUSTED_ENV}=1 to load it '
            f'without bounds{raise_it}.')


def check_compressed_records(compressed, name, limit):
    """Refuse compressed zip records that would expand beyond
    ``max(limit, MAX_EXPANSION * compressed size)`` bytes in total."""
    if not compressed:
        return
    packed = sum(i.compress_size for i in compressed)
    unpacked = sum(i.file_size for i in compressed)
    if unpacked > max(limit, MAX_EXPANSION * packed):
        biggest = max(compressed, key=lambda i: i.file_size)
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {name!r}: its compressed zip '
            f'records (e.g. {biggest.filename!r}) would expand from '
            f'{_mib(packed)} to {_mib(unpacked)} '
            f'({unpacked / max(packed, 1):,.0f}x), and torch reads each '
            f'record whole into memory; at most {MAX_EXPANSION}x or '
            f'{_mib(limit)} is accepted. torch.save never compresses '
            f'checkpoints: this file was re-packed or crafted. Re-save it '
            f'with torch.save. {_trust_hint()}')


def _refusal(name, e, limit):
    if e.reason == 'corrupt':
        return CorruptCheckpointError(
            f'Checkpoint {name} is truncated or damaged and cannot be read: '
            f'{e.what}. Re-download or re-create the file (a bad copy or an '
            f'interrupted write or download leave such files).')
    if e.reason == 'budget':
        return UnsafeCheckpointError(
            f'Refusing to load checkpoint {name!r}: unpickling it would '
            f'build at least {_mib(e.cost)} of objects outside its tensors '
            f'({e.what}) from {_mib(e.read)} of pickle; the limit is '
            f'{_mib(limit)} plus {PICKLE_FACTOR} bytes per byte of pickle. '
            f'No checkpoint mmengine or torch.save writes needs that: the '
            f'file is damaged or crafted to exhaust memory. '
            f'{_trust_hint()}')
    return UnsafeCheckpointError(
        f'Refusing to load checkpoint {name!r}: it pickles {e.what}. No '
        f'checkpoint mmengine or torch.save writes contains that, and the '
        f'memory it takes cannot be bounded before loading. '
        f'{_trust_hint(limit=False)}')


def _open_buffer(f, start=0, end=None):
    """``(buffer, offset of start in it, close)``: an mmap of a real file,
    else the bytes ``start:end`` read from it."""
    try:
        fileno = f.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        fileno = None
    if fileno is not None:
        try:
            m = mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
            return m, start, m.close
        except (OSError, ValueError):
            pass
    f.seek(start)
    data = f.read() if end is None else f.read(end - start)
    return data, 0, (lambda: None)


def _data_pkl(layout):
    """``(info, stored range or None)`` of the record torch unpickles."""
    if not layout.infos:
        return None, None
    prefix = layout.infos[0].filename.split('/', 1)[0]
    target = f'{prefix}/data.pkl'
    for start, end, info in layout.ranges:
        if info.filename == target:
            return info, (start, end)
    for info in layout.infos:
        if info.filename == target:
            return info, None
    return None, None


def check_pickle_bounds(f, name, layout, limit=None):
    """Walk the pickle(s) of a checkpoint (a seekable binary file at any
    position) and refuse it if unpickling would exceed the object limit.

    Args:
        layout: its :class:`~mmseg_contrast.checkpoint.integrity.
            CheckpointLayout`.
        limit (int, optional): bytes; default :func:`object_limit`.

    Raises:
        UnsafeCheckpointError: over the limit, or unboundable.
        CorruptCheckpointError: a legacy file claiming more tensor data than
            it holds.
    """
    limit = object_limit() if limit is None else limit
    if layout.kind not in ('zip', 'legacy'):
        return
    buf, close = None, (lambda: None)
    try:
        if layout.kind == 'zip':
            info, rng = _data_pkl(layout)
            if info is None:
                return  # torch reports the missing record
            if rng is None:  # compressed, already bounded in size
                f.seek(0)
                with zipfile.ZipFile(f) as zf:
                    buf = zf.read(info)
                rng = (0, len(buf))
            else:
                buf, at, close = _open_buffer(f, *rng)
                rng = (at, at + rng[1] - rng[0])
            PickleScan(buf, limit).run(*rng)
        else:
            buf, _, close = _open_buffer(f)
            scan = PickleScan(buf, limit, file_size=layout.size)
            pos = 0
            for _ in range(_LEGACY_PICKLES):
                pos = scan.run(pos, layout.size)
                if pos is None:
                    break
    except ScanRefusal as e:
        raise _refusal(name, e, limit) from None
    finally:
        buf = None
        close()
        f.seek(0)
