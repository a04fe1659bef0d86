"""Crash-safe writes: the one atomic save of the project.

Every file goes to a temporary file in the destination folder, is flushed
and ``fsync``-ed, renamed over the destination with ``os.replace`` (atomic
on POSIX and Windows) and the folder is ``fsync``-ed, so a crash at any
moment leaves either the previous file or the complete new one, never a
truncated one.

:func:`install_atomic_checkpoint_save` (patch ``atomic_checkpoint_save`` of
:func:`mmseg_contrast._compat.apply`) routes every checkpoint mmengine's
Runner writes to a local path (``iter_N.pth``, ``epoch_N.pth``, the best
checkpoint, published models) through :func:`atomic_torch_save`; other
backends (``s3://``, ``pavi://``, ...) are written by mmengine as before.
"""
import os
import os.path as osp

import mmengine.runner as runner_pkg
import mmengine.runner.checkpoint as ckpt_mod
import mmengine.runner.runner as runner_mod
import torch

__all__ = [
    'atomic_torch_save', 'atomic_write_text', 'save_checkpoint_atomic',
    'install_atomic_checkpoint_save'
]


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tmp_path(path: str) -> str:
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}.tmp')


def _publish(tmp: str, path: str) -> None:
    """Rename the complete, fsynced ``tmp`` over ``path``."""
    os.replace(tmp, path)
    _fsync_dir(osp.dirname(osp.abspath(path)))


def _write(path: str, write) -> str:
    path = os.fspath(path)
    tmp = _tmp_path(path)
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return path


def atomic_torch_save(obj, path) -> str:
    """``torch.save(obj, path)``, crash-safe (see the module docstring): an
    interrupted or failed save never leaves a half-written ``path`` behind
    (the previous file, if any, stays)."""
    return _write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path) -> str:
    """Write ``text`` (UTF-8) to ``path``, crash-safe."""
    return _write(path, lambda f: f.write(text.encode('utf-8')))


def _is_local(filename) -> bool:
    name = os.fspath(filename)
    return '://' not in name or name.startswith('file://')


_original_save = ckpt_mod.save_checkpoint


def save_checkpoint_atomic(checkpoint, filename, file_client_args=None,
                           backend_args=None):
    """mmengine's ``save_checkpoint`` with a crash-safe local write."""
    if _is_local(filename) and file_client_args is None and \
            backend_args is None:
        name = os.fspath(filename)
        if name.startswith('file://'):
            name = name[len('file://'):]
        atomic_torch_save(checkpoint, name)
        return
    _original_save(checkpoint, filename, file_client_args, backend_args)


save_checkpoint_atomic.__mmseg_contrast__ = True


def install_atomic_checkpoint_save() -> bool:
    """Make mmengine write local checkpoints through
    :func:`save_checkpoint_atomic` (idempotent; the one guard: the marker on
    the installed function)."""
    for mod in (ckpt_mod, runner_pkg, runner_mod):
        if not getattr(mod.save_checkpoint, '__mmseg_contrast__', False):
            mod.save_checkpoint = save_checkpoint_atomic
    return True
