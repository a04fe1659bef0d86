"""The errors of checkpoint I/O, in one place (stdlib only).

Every "this file cannot be used" case is a :class:`CorruptCheckpointError`
(a hash mismatch found while downloading is its subclass
:class:`ChecksumError`, so one ``except`` covers both); a file that would
have to run code is an :class:`UnsafeCheckpointError`; weights that do not
fit the model are a :class:`CheckpointMismatchError` (or, when only part
of them fits, a :class:`CheckpointMismatchWarning`).
"""
import pickle

__all__ = [
    'CorruptCheckpointError', 'ChecksumError', 'UnsafeCheckpointError',
    'CheckpointMismatchError', 'CheckpointMismatchWarning', 'DownloadError'
]


class CorruptCheckpointError(RuntimeError):
    """The file is empty, truncated, damaged, fails its checksum, or is not a
    PyTorch checkpoint."""


class ChecksumError(CorruptCheckpointError):
    """The downloaded/cached file does not match the sha256 in its name."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint contains pickled objects outside the safe allowlist,
    would exceed the resource bounds of loading, or is in a format only
    full unpickling reads."""


class CheckpointMismatchError(ValueError):
    """The checkpoint's weights do not fit the model they are loaded into."""


class CheckpointMismatchWarning(UserWarning):
    """Less than half of the model's floating-point parameters load."""


class DownloadError(RuntimeError):
    """The file could not be downloaded (after retries)."""
