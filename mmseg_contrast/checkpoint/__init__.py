"""Runtime checkpoint I/O: every checkpoint the plugin reads or writes.

* :mod:`.naming` - the hash-in-file-name rules (stdlib only);
* :mod:`.errors` - the error classes;
* :mod:`.saving` - the one atomic save (:func:`atomic_torch_save`: temporary
  file, fsync, rename) and mmengine's checkpoint writes routed through it;
* :mod:`.integrity` - the pre-unpickling integrity check;
* :mod:`.allowlist` - the globals a checkpoint may pickle;
* :mod:`.bounds` - the resource bounds of loading (objects outside the
  tensors, compressed records), checked by a dry run of the pickle
  (:mod:`.pickle_scan`, :mod:`.scan_loop`, :mod:`.scan_models`,
  :mod:`.scan_values`) before anything is unpickled;
* :mod:`.safety` - the safe loader (:func:`load_checkpoint_file`: integrity
  check + resource bounds + ``weights_only`` with the allowlist);
* :mod:`.matching` - the model-match / load-completeness guard;
* :mod:`.openseg_cache` - convert-on-download of the ContrastiveSeg
  authors' checkpoints;
* :mod:`.download` - checksummed, resumable ``http(s)://`` downloads and
  mmengine's URL loader.

Nothing here imports :mod:`mmseg_contrast._compat` (which installs the
loaders into mmengine) or any tooling.
"""
from .bounds import OBJECT_LIMIT_ENV
from .download import (
    default_cache_dir,
    download_checkpoint,
    load_from_http,
    register_url_scheme,
    sha256sum,
    url_cache_path,
)
from .errors import (
    CheckpointMismatchError,
    CheckpointMismatchWarning,
    ChecksumError,
    CorruptCheckpointError,
    DownloadError,
    UnsafeCheckpointError,
)
from .integrity import verify_checkpoint_file
from .naming import hash_prefix_from_url, hash_prefix_of
from .safety import (
    TRUSTED_ENV,
    check_checkpoint_matches,
    install_checkpoint_allowlist,
    load_checkpoint_file,
    safe_checkpoint_globals,
)
from .saving import atomic_torch_save, atomic_write_text

__all__ = [
    'CheckpointMismatchError', 'CheckpointMismatchWarning', 'ChecksumError',
    'CorruptCheckpointError', 'DownloadError', 'UnsafeCheckpointError',
    'TRUSTED_ENV', 'OBJECT_LIMIT_ENV',
    'atomic_torch_save', 'atomic_write_text', 'check_checkpoint_matches',
    'default_cache_dir', 'download_checkpoint', 'hash_prefix_from_url',
    'hash_prefix_of', 'install_checkpoint_allowlist',
    'load_checkpoint_file', 'load_from_http', 'register_url_scheme',
    'safe_checkpoint_globals', 'sha256sum', 'url_cache_path',
    'verify_checkpoint_file'
]
