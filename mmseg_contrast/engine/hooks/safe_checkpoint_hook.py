"""A ``CheckpointHook`` that no crash can leave without a resumable run."""
import os
import os.path as osp
import re

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

from ...checkpoint.resume import checkpoint_step, step_checkpoints
from ...checkpoint.saving import atomic_write_text

__all__ = ['SafeCheckpointHook']

#: what :func:`mmseg_contrast.checkpoint.saving.atomic_torch_save` writes
#: before the rename: ``.<name>.pth.<pid>.tmp``
_TMP = re.compile(r'^\..+\.pth\.\d+\.tmp$')


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with crash-safe ordering.

    mmengine deletes the oldest kept checkpoint *before* it writes the new
    one, and writes neither atomically: with ``max_keep_ckpts=1`` a crash
    during the save leaves ``last_checkpoint`` naming a deleted file next to
    a truncated one, and ``--resume`` cannot continue. Here, for a local
    ``out_dir``:

    1. the checkpoint is written to a temporary file in ``out_dir``,
       fsynced and renamed into place (every Runner checkpoint write is, see
       :mod:`mmseg_contrast.checkpoint.saving`);
    2. ``last_checkpoint`` is rewritten the same way;
    3. only then is the checkpoint that falls out of ``max_keep_ckpts``
       removed.

    A crash at any point leaves ``last_checkpoint`` naming a complete file.
    A crash between 2 and 3 leaves one extra old checkpoint, removed when
    the run resumes. ``tools/train.py`` puts this hook in place of
    ``default_hooks.checkpoint`` of type ``CheckpointHook`` (same
    arguments); with mmseg's own ``tools/train.py`` set
    ``default_hooks.checkpoint.type='mmseg.SafeCheckpointHook'``. Other
    backends (``s3://``, ...) behave as in mmengine.
    """

    def _local(self):
        return isinstance(self.file_backend, LocalBackend)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not (self._local() and is_main_process()):
            return
        self._remove_temporaries()
        if self.max_keep_ckpts > 0 and self.keep_ckpt_ids:
            self._remove_stale(min(self.keep_ckpt_ids))

    def _remove_temporaries(self) -> None:
        """Temporary files of a save that a crash interrupted."""
        if not osp.isdir(self.out_dir):
            return
        for name in os.listdir(self.out_dir):
            if _TMP.match(name):
                os.remove(osp.join(self.out_dir, name))

    def _remove_stale(self, oldest_kept: int) -> None:
        """Step checkpoints older than every kept one: what a crash between
        ``last_checkpoint`` and the removal left behind."""
        for path in step_checkpoints(self.out_dir):
            step = checkpoint_step(path)
            if step < oldest_kept and osp.basename(
                    path) == self.filename_tmpl.format(step):
                self._remove_checkpoint(step)

    def _remove_checkpoint(self, step: int) -> None:
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed saves folders
            self.file_backend.rmtree(path)

    def _write_last_checkpoint(self, runner) -> None:
        atomic_write_text(self.last_ckpt,
                          osp.join(runner.work_dir, 'last_checkpoint'))

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        drop = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                drop = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        self._write_last_checkpoint(runner)
        if drop is not None and drop != step:
            self._remove_checkpoint(drop)
