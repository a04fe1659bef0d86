"""mmseg_contrast._compat.cpu_dist: mmengine's pytorch-launcher init and DDP
wrapper on a machine without GPUs (the end-to-end launcher runs are in
tests/test_tools/test_dist_train_cpu.py)."""
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from mmseg_contrast import _compat

pytestmark = pytest.mark.skipif(torch.cuda.is_available(),
                                reason='the fix is only active without CUDA')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_applied_without_gpu():
    assert 'cpu_dist' in _compat.APPLIED


def test_init_dist_and_ddp_wrapper_in_a_fresh_process():
    code = textwrap.dedent('''
    import mmseg_contrast
    import torch
    import torch.distributed as dist
    from mmengine.dist import init_dist
    from mmengine.model import MMDistributedDataParallel
    try:
        init_dist('pytorch', backend='nccl')
    except RuntimeError as e:
        assert "backend='gloo'" in str(e), e
        print('NCCL-REFUSED')
    init_dist('pytorch', backend='gloo')  # no torch.cuda.set_device
    assert dist.get_world_size() == 1
    # what Runner.wrap_model builds: device_ids=[LOCAL_RANK]
    ddp = MMDistributedDataParallel(module=torch.nn.Linear(2, 2),
                                    device_ids=[0], broadcast_buffers=False)
    assert ddp.device_ids is None
    out = ddp(torch.ones(1, 2))
    out.sum().backward()
    print('DDP-OK', tuple(out.shape))
    dist.destroy_process_group()
    ''')
    env = dict(os.environ, RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
               MASTER_ADDR='127.0.0.1', MASTER_PORT=str(_free_port()),
               OMP_NUM_THREADS='1')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'NCCL-REFUSED' in res.stdout and 'DDP-OK (1, 2)' in res.stdout
