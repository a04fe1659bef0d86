"""Devices to parametrise a test over: ``@pytest.mark.parametrize('device',
DEVICES)``. The ``cuda`` case carries the ``cuda`` marker (registered in
pytest.ini; ``pytest -m cuda`` selects it, ``tools/analysis/gpu_check.py``
runs those on a GPU machine) and is skipped where torch sees no CUDA
device, so the suite passes on a CPU-only machine."""
import pytest
import torch

CUDA = pytest.param(
    'cuda',
    marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not torch.cuda.is_available(),
                           reason='needs a CUDA device')
    ],
    id='cuda')
DEVICES = ['cpu', CUDA]

__all__ = ['CUDA', 'DEVICES']
