"""Run ``tools/train.py`` and SIGKILL it at one point of one checkpoint save.

``python tests/helpers/crash_train.py POINT STEP -- <tools/train.py args>``

POINT (all while ``iter_<STEP>.pth`` is being saved):

* ``write``: mid-write, half of the checkpoint's bytes on disk;
* ``rename``: the complete temporary file, before its rename;
* ``last_checkpoint``: after the rename, before ``last_checkpoint``;
* ``remove``: after ``last_checkpoint``, before the oldest kept checkpoint
  is removed;
* ``none``: no crash.

SIGKILL runs no handler and flushes nothing: what is on disk is what a
power cut or the OOM killer would leave.

mmengine's own hook is registered as ``PlainCheckpointHook`` (which
``tools/train.py`` does not replace), for the control runs.
"""
import os
import os.path as osp
import runpy
import signal
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _die():
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install(point, step):
    from mmengine.hooks import CheckpointHook
    from mmseg.registry import HOOKS

    from mmseg_contrast.checkpoint import saving
    from mmseg_contrast.engine.hooks import SafeCheckpointHook
    HOOKS.register_module('PlainCheckpointHook', module=CheckpointHook)
    target = f'iter_{step}.pth'

    def ours(path):
        return osp.basename(os.fspath(path)) == target

    if point == 'write':
        original_write = saving._write

        def _write(path, write):
            if not ours(path):
                return original_write(path, write)
            tmp = saving._tmp_path(path)
            with open(tmp, 'wb') as f:
                write(f)
                f.flush()
                size = f.tell()
                f.truncate(size // 2)
                f.flush()
                os.fsync(f.fileno())
            _die()

        saving._write = _write
    elif point == 'rename':
        original_publish = saving._publish

        def _publish(tmp, path):
            if ours(path):
                _die()
            return original_publish(tmp, path)

        saving._publish = _publish
    elif point in ('last_checkpoint', 'remove'):
        attr = ('_write_last_checkpoint'
                if point == 'last_checkpoint' else '_remove_checkpoint')
        original = getattr(SafeCheckpointHook, attr)

        def crash(self, *args):
            if osp.basename(self.last_ckpt) == target:
                _die()
            return original(self, *args)

        setattr(SafeCheckpointHook, attr, crash)
    elif point != 'none':
        raise SystemExit(f'unknown crash point {point!r}')


if __name__ == '__main__':
    point, step, sep, *train_args = sys.argv[1:]
    assert sep == '--', 'usage: crash_train.py POINT STEP -- ARGS'
    install(point, int(step))
    sys.argv = ['tools/train.py', *train_args]
    runpy.run_path(osp.join(REPO, 'tools', 'train.py'), run_name='__main__')
