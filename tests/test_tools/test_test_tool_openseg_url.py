"""``tools/test.py <openseg config> <authors' URL>`` from a cold cache.

A local HTTP server on 127.0.0.1 serves a checkpoint in the ContrastiveSeg
authors' layout (``{'config_dict', 'state_dict'}``, ``module.`` keys, the
HRNet-W48 CE model with the deterministic weights of
``tests/helpers/openseg_layout.py``) under the released file name. The
first run downloads it (the connection drops halfway: the transfer is
retried and resumed with a Range request), detects the layout, converts and
caches the conversion, and evaluates on a one-image Cityscapes-layout
dataset; the second run makes no request and reuses the cached conversion.
"""
import os
import re
import subprocess
import sys

import cv2
import numpy as np

from helpers.local_http_server import FileServer
from helpers.openseg_layout import openseg_checkpoint_bytes
from helpers.tool_helpers import REPO

CONFIG = 'configs/pixel_contrast/fcn_hr48_openseg_4xb2-40k_cityscapes-512x1024.py'  # noqa: E501
URL_PATH = '/tfzhou/pretrained_weights/releases/download/v0.1/' \
    'hrnet_w48_lr1x_hrnet_ce_max_performance.pth'


def _cityscapes(root, h=68, w=132):
    rs = np.random.RandomState(0)
    img_dir = root / 'leftImg8bit' / 'val' / 'lindau'
    ann_dir = root / 'gtFine' / 'val' / 'lindau'
    img_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    cv2.imwrite(str(img_dir / 'lindau_000000_000019_leftImg8bit.png'),
                rs.randint(0, 256, (h, w, 3)).astype(np.uint8))
    label = rs.randint(0, 19, (h, w)).astype(np.uint8)
    label[:4] = 255
    cv2.imwrite(
        str(ann_dir / 'lindau_000000_000019_gtFine_labelTrainIds.png'), label)


def _run(tmp_path, url):
    opts = [
        f'test_dataloader.dataset.data_root={tmp_path / "cityscapes"}',
        'test_dataloader.dataset.pipeline.1.scale=(132,68)',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
    ]
    env = dict(os.environ, TORCH_HOME=str(tmp_path / 'torch'),
               OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', CONFIG, url, '--work-dir',
         str(tmp_path / 'wd'), '--cfg-options'] + opts,
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'missing keys' not in out and 'unexpected key' not in out, out
    miou = re.search(r'mIoU: ([0-9.]+)', out)
    assert miou, out[-3000:]
    return out, float(miou.group(1))


def test_authors_url_cold_then_warm_cache(tmp_path):
    _cityscapes(tmp_path / 'cityscapes')
    data = openseg_checkpoint_bytes('hrnet_w48_contrast', ce=True)
    with FileServer() as srv:
        srv.files[URL_PATH] = data
        srv.drop_after[URL_PATH] = len(data) // 2
        url = srv.url(URL_PATH)
        out, miou = _run(tmp_path, url)
        assert srv.requests == [(URL_PATH, None),
                                (URL_PATH, f'bytes={len(data) // 2}-')]
        assert 'resuming at byte' in out
        assert 'openseg checkpoint converted for mmseg' in out
        assert 'architecture: hrnet_w48 (19 classes)' in out
        cached = list((tmp_path / 'torch' / 'hub' / 'checkpoints').rglob(
            'hrnet_w48_lr1x_hrnet_ce_max_performance*'))
        names = sorted(p.name for p in cached)
        assert names == ['hrnet_w48_lr1x_hrnet_ce_max_performance.mmseg.pth',
                         'hrnet_w48_lr1x_hrnet_ce_max_performance.pth']
        assert [p for p in cached if p.suffixes == ['.pth']][0].read_bytes() \
            == data
        # warm cache: the server is gone, no request, no conversion
        srv.files.clear()
        srv.requests.clear()
        out2, miou2 = _run(tmp_path, url)
        assert srv.requests == []
        assert 'using the cached conversion' in out2
        assert 'converted for mmseg' not in out2
        assert miou2 == miou
