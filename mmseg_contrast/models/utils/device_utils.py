"""Device helpers shared by the losses, the memory bank and the mixing:
the check that a ``torch.Generator`` lives on the tensors' device, and an
autocast-free region for the fp32 statistics (sums over pixels) and
similarities."""
import contextlib
from typing import Optional, Union

import torch

__all__ = ['check_generator', 'fp32_region']


def _same_device(gen_dev: torch.device, dev: torch.device) -> bool:
    if gen_dev.type != dev.type:
        return False
    if dev.type == 'cpu' or gen_dev.index is None or dev.index is None:
        return True
    return gen_dev.index == dev.index


def check_generator(owner: str, generator: Optional[torch.Generator],
                    device: Union[torch.device, str]) -> None:
    """Raise one ``ValueError`` when ``generator`` is not on ``device``.

    Random draws are made on the tensors' device with ``generator``; a CPU
    generator cannot drive CUDA draws (torch raises a raw error deep in the
    call, or a caller would quietly draw on the CPU and copy, a host sync
    and another random stream). ``None`` (the global generator) is fine.
    """
    if generator is None:
        return
    device = torch.device(device)
    gen_dev = torch.device(getattr(generator, 'device', 'cpu'))
    if not _same_device(gen_dev, device):
        raise ValueError(
            f'{owner}: the generator is on {gen_dev} but the tensors are on '
            f'{device}; create it with torch.Generator(device='
            f'{str(device)!r}) (or pass generator=None)')


def fp32_region(device: Union[torch.device, str]):
    """Context in which autocast is off on ``device``'s type, so that the
    explicitly fp32 tensors of the block stay fp32 (an fp16 autocast would
    run matmuls in fp16, whose sums over many pixels pass 65504)."""
    dev_type = torch.device(device).type
    available = getattr(torch.amp, 'is_autocast_available', None)
    if dev_type in ('cpu', 'cuda') or (available and available(dev_type)):
        return torch.autocast(device_type=dev_type, enabled=False)
    return contextlib.nullcontext()
