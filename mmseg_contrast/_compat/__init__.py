"""Compatibility layer for the pinned OpenMMLab stack: the one list of
patches.

Everything the plugin changes in the libraries it runs on is installed by
:func:`apply`, called first by ``mmseg_contrast/__init__.py`` (before anything
imports ``mmseg.models``). Each patch is applied only when the installed
stack needs it, and each installer is idempotent through one guard of its
own (a marker on what it patched). :data:`APPLIED` names what was installed.

=========================  ==================================================
``mmcv_ops_shim``          :mod:`.mmcv_ops`: pure-PyTorch ``point_sample`` /
                           ``sigmoid_focal_loss`` when mmcv has no compiled
                           ops (mmcv-lite)
``checkpoint_allowlist``   :func:`mmseg_contrast.checkpoint.safety.
                           install_checkpoint_allowlist`: every checkpoint
                           mmengine reads goes through the safe loader
                           (torch >= 2.6)
``url_checkpoint_loader``  :func:`mmseg_contrast.checkpoint.download.
                           register_url_scheme`: checksummed, resumable
                           ``http(s)://`` checkpoints
``atomic_checkpoint_save`` :func:`mmseg_contrast.checkpoint.saving.
                           install_atomic_checkpoint_save`: every local
                           checkpoint the Runner writes is crash-safe
                           (temporary file, fsync, rename)
``pkg_resources_backport`` :mod:`.pkg_resources_backport` (setuptools >= 82)
``config_scope``           :mod:`.config_scope`: ``mmseg_contrast::``
                           configs, like ``mmseg::``
``cpu_dist``               :mod:`.cpu_dist`: ``tools/dist_train.sh`` on a
                           machine without an accelerator
=========================  ==================================================
"""
import importlib
import warnings

from ..checkpoint import download, safety, saving
from . import cpu_dist
from .config_scope import install_config_scope
from .mmcv_ops import install_mmcv_ops_shim, point_sample, sigmoid_focal_loss
from .pkg_resources_backport import install_pkg_resources_backport

__all__ = [
    'apply', 'APPLIED', 'PATCHES', 'point_sample', 'sigmoid_focal_loss',
    'install_mmcv_ops_shim', 'install_pkg_resources_backport'
]

#: Names of the patches that :func:`apply` actually installed.
APPLIED = []


def _quiet_mmcv_ops_shim():
    # importing mmcv-lite warns about its missing compiled ops
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        return install_mmcv_ops_shim()


#: ``(name, installer)``: every patch, in the order they are installed. An
#: installer returns True when its patch is (or already was) in place.
PATCHES = (
    ('mmcv_ops_shim', _quiet_mmcv_ops_shim),
    ('checkpoint_allowlist', safety.install_checkpoint_allowlist),
    ('url_checkpoint_loader', download.register_url_scheme),
    ('atomic_checkpoint_save', saving.install_atomic_checkpoint_save),
    ('pkg_resources_backport', install_pkg_resources_backport),
    ('config_scope', install_config_scope),
    ('cpu_dist', cpu_dist.apply),
)


def apply():
    """Install every patch the installed stack needs (idempotent); return
    the names of those in place."""
    for name, install in PATCHES:
        if install() and name not in APPLIED:
            APPLIED.append(name)
    return list(APPLIED)


#: names this module re-exported from the checkpoint safety module before
#: :mod:`mmseg_contrast.checkpoint` existed (kept for one release)
_MOVED = {
    name: 'mmseg_contrast.checkpoint.safety'
    for name in ('TRUSTED_ENV', 'UnsafeCheckpointError',
                 'CorruptCheckpointError', 'CheckpointMismatchError',
                 'safe_checkpoint_globals', 'load_checkpoint_file',
                 'install_checkpoint_allowlist')
}


def __getattr__(name):
    if name in _MOVED:
        warnings.warn(
            f'mmseg_contrast._compat.{name} is deprecated and will be '
            f'removed in the next release: import it from {_MOVED[name]} '
            f'(or mmseg_contrast.checkpoint).', DeprecationWarning,
            stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
