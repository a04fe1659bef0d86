"""The errors of checkpoint I/O, in one place (stdlib only).

Every "this file cannot be used" case is a :class:`CorruptCheckpointError`
(a hash mismatch found while downloading is its subclass
:class:`ChecksumError`, so one ``except`` covers both); a file that would
have to run code is an :class:`UnsafeCheckpointError`; weights that do not
fit the model are a :class:`CheckpointMismatchError`.
"""
import pickle

__all__ = [
    'CorruptCheckpointError', 'ChecksumError', 'UnsafeCheckpointError',
    'CheckpointMismatchError', 'DownloadError'
]


class CorruptCheckpointError(RuntimeError):
    """The file is empty, truncated, damaged, fails its checksum, or is not a
    PyTorch checkpoint."""


class ChecksumError(CorruptCheckpointError):
    """The downloaded/cached file does not match the sha256 in its name."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint contains pickled objects outside the safe allowlist."""


class CheckpointMismatchError(ValueError):
    """The checkpoint's weights do not fit the model they are loaded into."""


class DownloadError(RuntimeError):
    """The file could not be downloaded (after retries)."""
