"""CPU multi-process training through the standard launcher (patch
``cpu_dist`` of :func:`mmseg_contrast._compat.apply`).

``tools/dist_train.sh CONFIG 2`` (torchrun + ``--launcher pytorch``) cannot
run on a machine without a GPU with mmengine 0.10.7, whatever the backend:

* ``mmengine.dist.init_dist`` -> ``_init_dist_pytorch`` calls
  ``torch.cuda.set_device(local_rank)`` before ``init_process_group``;
* ``Runner.wrap_model`` builds ``MMDistributedDataParallel`` with
  ``device_ids=[local_rank]``, which torch's DDP refuses for a CPU module.

When no accelerator is available (no CUDA, NPU, MLU or MUSA device) this
module makes ``_init_dist_pytorch`` initialise the process group without
``set_device`` (and refuses the GPU-only ``nccl`` backend with a clear
message), and makes ``MMDistributedDataParallel`` drop ``device_ids`` /
``output_device`` for a module whose parameters are all on the CPU (torch's
own rule for CPU modules). With an accelerator nothing is changed.
"""
import functools

import mmengine.dist.utils as dist_utils
import torch
import torch.distributed as torch_dist
from mmengine.device import (
    is_cuda_available,
    is_mlu_available,
    is_musa_available,
    is_npu_available,
)
from mmengine.model import MMDistributedDataParallel

__all__ = ['apply', 'cpu_only']


def cpu_only() -> bool:
    """True when mmengine would find no accelerator at all."""
    return not (is_cuda_available() or is_npu_available()
                or is_mlu_available() or is_musa_available())


def _init_dist_pytorch_cpu(backend, init_backend='torch', **kwargs) -> None:
    """``mmengine.dist.utils._init_dist_pytorch`` without
    ``torch.cuda.set_device`` (rank and world size come from the launcher's
    environment, as there)."""
    if str(backend).lower() == 'nccl':
        raise RuntimeError(
            "dist backend 'nccl' needs CUDA GPUs and none is available; for "
            "CPU training set env_cfg.dist_cfg.backend='gloo' (e.g. "
            "--cfg-options env_cfg.dist_cfg.backend=gloo).")
    if init_backend != 'torch':
        raise RuntimeError(
            f'CPU distributed training supports init_backend="torch" only, '
            f'got {init_backend!r}')
    torch_dist.init_process_group(backend=backend, **kwargs)


def _cpu_module(module) -> bool:
    tensors = list(module.parameters()) + list(module.buffers())
    return bool(tensors) and all(t.device.type == 'cpu' for t in tensors)


def apply() -> bool:
    """Install both fixes when no accelerator is available (idempotent).

    Returns True when they are installed. The one guard: the marker on the
    patched ``_init_dist_pytorch``."""
    if getattr(dist_utils._init_dist_pytorch, '__mmseg_contrast__', False):
        return True
    if not cpu_only():
        return False
    original_init = dist_utils._init_dist_pytorch

    @functools.wraps(original_init)
    def init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if not cpu_only():  # an accelerator appeared after import
            return original_init(backend, init_backend, **kwargs)
        return _init_dist_pytorch_cpu(backend, init_backend, **kwargs)

    init_dist_pytorch.__mmseg_contrast__ = True

    original_ddp_init = MMDistributedDataParallel.__init__

    @functools.wraps(original_ddp_init)
    def ddp_init(self, module, *args, **kwargs):
        if (kwargs.get('device_ids') is not None and not
                torch.cuda.is_available() and _cpu_module(module)):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        original_ddp_init(self, module, *args, **kwargs)

    MMDistributedDataParallel.__init__ = ddp_init
    dist_utils._init_dist_pytorch = init_dist_pytorch  # last: the marker
    return True
