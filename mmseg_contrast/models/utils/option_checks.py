"""Build-time checks of :class:`~.memory_bank.PixelMemoryBank`'s options
(kept out of ``memory_bank.py``, which is long enough); the ranges are
stated in the class docstring."""
from ...options import check_bool, check_int, check_positive_int

__all__ = ['check_bank_options']


def check_bank_options(owner: str, num_classes, feat_dim, memory_size,
                       pixel_per_image, ignore_index, gather, seed) -> None:
    """Raise ``ValueError`` / ``TypeError`` naming ``owner``, the option,
    the value and the valid range for the first invalid option."""
    for name, val in (('num_classes', num_classes), ('feat_dim', feat_dim),
                      ('memory_size', memory_size),
                      ('pixel_per_image', pixel_per_image)):
        check_positive_int(owner, name, val)
    if memory_size <= pixel_per_image:
        raise ValueError(
            f'{owner}: memory_size={memory_size!r} is invalid; it must be '
            f'> pixel_per_image={pixel_per_image!r} (one enqueue of one '
            f'image writes up to pixel_per_image pixels per class into the '
            f'memory_size slots of the class, so the bank would fail at the '
            f'first enqueue, after the first optimizer step): raise '
            f'memory_size or lower pixel_per_image')
    check_int(owner, 'ignore_index', ignore_index)
    check_bool(owner, 'gather', gather)
    check_int(owner, 'seed', seed)
