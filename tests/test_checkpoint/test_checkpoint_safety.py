"""The safe checkpoint loader: allowlisted pickles load, anything else is
refused before it runs (:mod:`mmseg_contrast.checkpoint.safety`)."""
import collections
import fractions
import os

import numpy as np
import pytest
import torch

from mmseg_contrast import checkpoint as ckpt_io

from helpers.subprocess_run import run_py


# ------------------------------------------------------------ checkpoints
def _mmengine_style_checkpoint():
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer
    hb = HistoryBuffer()
    hb.update(1.5)
    hb.update(0.25)
    return {
        'meta': {
            'seed': np.int64(3),
            'dataset_meta': {'classes': ('a', 'b'), 'palette': [[0, 0, 0],
                                                               [1, 2, 3]]},
            'arr': np.arange(4, dtype=np.float32),
            'cfg': ConfigDict(a=1),
            'dtype': np.dtype('float64'),
        },
        'state_dict': collections.OrderedDict(w=torch.ones(2)),
        'message_hub': {'log_scalars': {'train/loss': hb}},
    }


def test_safe_checkpoint_roundtrip(tmp_path):
    from mmengine.runner import CheckpointLoader
    path = str(tmp_path / 'ok.pth')
    torch.save(_mmengine_style_checkpoint(), path)
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert ckpt['meta']['seed'] == 3
    assert ckpt['meta']['arr'].tolist() == [0., 1., 2., 3.]
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == 0.25
    torch.testing.assert_close(ckpt['state_dict']['w'], torch.ones(2))


class _Evil:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_unsafe_checkpoint_refused(tmp_path):
    from mmengine.runner import CheckpointLoader, load_checkpoint
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': _Evil(marker)},
               path)
    with pytest.raises(ckpt_io.UnsafeCheckpointError) as exc:
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    msg = str(exc.value)
    assert 'Refusing to load checkpoint' in msg and 'system' in msg
    assert ckpt_io.TRUSTED_ENV in msg
    assert not marker.exists()
    # init_cfg=Pretrained / load_from go through the same loader
    with pytest.raises(ckpt_io.UnsafeCheckpointError):
        load_checkpoint(torch.nn.Linear(1, 1), path, map_location='cpu')
    assert not marker.exists()


def test_trusted_opt_in(tmp_path, monkeypatch):
    path = str(tmp_path / 'frac.pth')
    torch.save({'x': fractions.Fraction(1, 3)}, path)
    with pytest.raises(ckpt_io.UnsafeCheckpointError, match='Fraction'):
        ckpt_io.load_checkpoint_file(path)
    monkeypatch.setenv(ckpt_io.TRUSTED_ENV, '1')
    assert ckpt_io.load_checkpoint_file(path)['x'] == fractions.Fraction(1, 3)


def test_missing_checkpoint_clear_error(tmp_path):
    from mmengine.runner import CheckpointLoader
    with pytest.raises(FileNotFoundError, match='can not be found'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'))


def test_unsafe_pickle_refused_in_fresh_process(tmp_path):
    """The allowlist is active from a plain `import mmseg_contrast`."""
    path = tmp_path / 'evil.pth'
    marker = tmp_path / 'pwned2'
    torch.save({'x': _Evil(marker)}, str(path))
    res = run_py(f'''
    import mmseg_contrast
    from mmengine.runner import load_checkpoint
    import torch
    try:
        load_checkpoint(torch.nn.Linear(1, 1), {str(path)!r})
    except Exception as e:
        print(type(e).__name__, e)
    ''')
    assert 'UnsafeCheckpointError' in res.stdout, res.stderr[-2000:]
    assert not marker.exists()


class _SneakyGetattr:

    def __reduce__(self):
        import numpy
        return (getattr, (numpy.ndarray, 'tofile'))


def test_getattr_is_restricted(tmp_path):
    """HistoryBuffer needs getattr(HistoryBuffer, 'mean'); any other getattr
    in a checkpoint is refused."""
    path = str(tmp_path / 'sneaky.pth')
    torch.save({'x': _SneakyGetattr()}, path)
    with pytest.raises(ckpt_io.UnsafeCheckpointError, match='tofile'):
        ckpt_io.load_checkpoint_file(path)
