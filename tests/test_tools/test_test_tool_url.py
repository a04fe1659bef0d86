"""``tools/test.py CONFIG URL``: verified download into the torch hub cache."""
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from helpers.local_http_server import FileServer
from helpers.tool_helpers import CONFIG, REPO


def test_test_tool_downloads_checkpoint_url(tmp_path, ce_ckpt, aal_root):
    data = Path(ce_ckpt).read_bytes()
    name = f'deeplabv3_mnv2_aal_cpu_20260101-' \
        f'{hashlib.sha256(data).hexdigest()[:8]}.pth'
    env = dict(os.environ, TORCH_HOME=str(tmp_path / 'torch'),
               OMP_NUM_THREADS='1')
    opts = [
        f'test_dataloader.dataset.data_root={aal_root}',
        'test_dataloader.dataset.indices=2', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]
    with FileServer() as srv:
        srv.files[f'/zoo/{name}'] = data
        proc = subprocess.run(
            [sys.executable, 'tools/test.py', CONFIG,
             srv.url(f'/zoo/{name}'), '--work-dir', str(tmp_path / 'wd'),
             '--cfg-options'] + opts,
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert len(srv.requests) == 1
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'Loads checkpoint by http backend' in out
    assert re.search(r'mIoU: [0-9.]+', out), out[-2000:]
    # cached under a folder keyed by the full URL
    cached = list((tmp_path / 'torch' / 'hub' / 'checkpoints').rglob(name))
    assert len(cached) == 1 and cached[0].read_bytes() == data
    shutil.rmtree(tmp_path / 'wd')
