"""Build-time checks that a contrast head's parts agree with the head.

Each mismatch here used to be accepted silently: a memory bank with fewer
classes than its head never contrasts the classes beyond its own, one with
another ``feat_dim`` fails only at the first enqueue, and a loss bounded to
another number of classes ignores or invents classes.
"""
from typing import Optional

__all__ = ['memory_bank_cfg_for_head', 'bind_loss_num_classes',
           'missing_bank_consumer_error']


def memory_bank_cfg_for_head(owner: str, bank_cfg: dict, num_classes: int,
                             feat_dim: int, ignore_index: int) -> dict:
    """``bank_cfg`` with ``num_classes`` / ``feat_dim`` / ``ignore_index``
    defaulting to the head's; raises ``ValueError`` (naming the option and
    the fix) when the config sets one of them to something else."""
    bank_cfg = dict(bank_cfg)
    for key, value, head_key in (('num_classes', num_classes, 'num_classes'),
                                 ('feat_dim', feat_dim, 'proj_channels'),
                                 ('ignore_index', ignore_index,
                                  'ignore_index')):
        given = bank_cfg.setdefault(key, value)
        if given != value:
            raise ValueError(
                f'{owner}: decode_head.memory_bank.{key}={given!r} differs '
                f"from the head's {head_key}={value!r}; the bank must hold "
                f"exactly the head's classes, embedding width and ignore "
                f'label (otherwise classes are never contrasted or keys do '
                f'not fit). Remove memory_bank.{key} from the config (it '
                f"defaults to the head's {head_key}) or make them equal.")
    return bank_cfg


def bind_loss_num_classes(owner: str, loss, num_classes: int) -> None:
    """Give ``loss`` the head's ``num_classes`` when it takes one (e.g.
    ``PixelContrastLoss``) and none is configured; raise ``ValueError`` if
    another one is."""
    current: Optional[int] = getattr(loss, 'num_classes', False)
    if current is False:  # a loss without a class bound
        return
    if current is None:
        loss.num_classes = num_classes
    elif current != num_classes:
        raise ValueError(
            f'{owner}: contrast_loss.num_classes={current!r} differs from '
            f"the head's num_classes={num_classes!r}; remove it from the "
            f"config (it defaults to the head's).")


def missing_bank_consumer_error(owner: str) -> RuntimeError:
    """The error for a memory bank that nothing fills."""
    return RuntimeError(
        f'{owner}: decode_head.memory_bank is set but nothing enqueues keys '
        f'into it, so the bank would stay empty and loss_contrast would be 0 '
        f"for the whole run. Add custom_hooks=[dict(type="
        f"'PixelMemoryBankHook')] to the config (in a hand-written training "
        f'loop instead: call head.memory_bank.enqueue(*head.'
        f'pop_pending_keys()) after every optimizer step and set '
        f"head.memory_bank_consumer = 'manual').")
