"""Files that are no ordinary checkpoint give one clear error with the fix:
a torch < 0.4 tar checkpoint, a bare tensor given to semi2plain (the URL
of a folder: test_download.py)."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmseg_contrast.checkpoint import (
    TRUSTED_ENV,
    UnsafeCheckpointError,
    load_checkpoint_file,
    verify_checkpoint_file,
)

from helpers.reliab_helpers import save_legacy_tar
from helpers.tool_loading import load_tool


def _old_checkpoint():
    g = torch.Generator().manual_seed(0)
    return {'state_dict': {'conv.weight': torch.randn(4, 3, 3, 3,
                                                      generator=g),
                           'bn.num_batches_tracked': torch.tensor(7)},
            'meta': {'epoch': 3}}


def test_tar_checkpoint_says_what_it_is_and_how_to_convert(tmp_path):
    """Before: 'damaged ... re-download or re-create it'."""
    old = _old_checkpoint()
    path = save_legacy_tar(tmp_path / 'deeplab.pth.tar', old)
    assert verify_checkpoint_file(path) == 'tar'
    with pytest.raises(UnsafeCheckpointError) as exc:
        load_checkpoint_file(path)
    msg = str(exc.value)
    assert 'deeplab.pth.tar' in msg and 'tar archive' in msg
    assert 'torch < 0.4' in msg and 'not a damaged file' in msg
    assert 'weights_only=False' in msg and TRUSTED_ENV in msg
    assert 're-download' not in msg
    # the conversion the message gives, as printed
    cmd = msg.split('\n')[1].strip()
    assert cmd.startswith('python -c "') and cmd.endswith('"')
    subprocess.run([sys.executable, '-c', cmd[len('python -c "'):-1]],
                   check=True, cwd=str(tmp_path), timeout=300)
    out = str(tmp_path / 'deeplab_torch2.pth')
    assert osp.basename(out) in msg
    new = load_checkpoint_file(out)
    torch.testing.assert_close(new['state_dict'], old['state_dict'])
    assert new['meta'] == {'epoch': 3}


def test_trusted_tar_checkpoint_loads(tmp_path, monkeypatch):
    old = _old_checkpoint()
    path = save_legacy_tar(tmp_path / 'old.tar', old)
    monkeypatch.setenv(TRUSTED_ENV, '1')
    torch.testing.assert_close(load_checkpoint_file(path)['state_dict'],
                               old['state_dict'])


@pytest.mark.parametrize('content', ['tensor', 'list_state_dict'])
def test_semi2plain_on_something_else(tmp_path, content):
    """Before: AttributeError: 'Tensor' object has no attribute 'get'."""
    src = str(tmp_path / 'weights.pth')
    torch.save(torch.zeros(3, 4) if content == 'tensor' else
               {'state_dict': [torch.zeros(2)]}, src)
    dst = tmp_path / 'plain.pth'
    with pytest.raises(ValueError) as exc:
        load_tool('model_converters/semi2plain.py').main([src, str(dst)])
    msg = str(exc.value)
    assert 'weights.pth is not a checkpoint dict' in msg
    assert ('torch.Tensor of shape (3, 4)' if content == 'tensor' else
            "builtins.list under 'state_dict'") in msg
    assert not dst.exists()
