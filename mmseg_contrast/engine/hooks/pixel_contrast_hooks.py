"""Hooks for supervised pixel contrast (ContrastiveSeg, Wang et al. ICCV'21).

* :class:`PixelMemoryBankHook` enqueues the detached keys that a
  ``PixelContrastMixin`` head kept during ``loss()`` into its
  ``PixelMemoryBank`` after the optimizer step (MoCo order; the reference
  enqueues before backward).
* :class:`ContrastWarmupHook` switches the contrast term on at iteration
  ``warmup_iters`` (reference: ``with_embed = iters >= warmup_iters``). The
  reference applies the switch only in its DDP branch, so on one GPU the
  term is silently never used; here the multiplier is an attribute of every
  contrast head, set from ``runner.iter`` on every rank, so it is identical
  on one process and under DDP, and is recomputed after ``--resume``.

Both hooks find the contrast heads with ``model.modules()`` after unwrapping
model wrappers (``mmengine.model.is_model_wrapper``), so they work for
``EncoderDecoder`` and ``CascadeEncoderDecoder`` (OCRNet) alike.
"""
from typing import List, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch.nn.parallel import DistributedDataParallel

from mmseg_contrast.models.decode_heads.pixel_contrast_head import (
    PixelContrastMixin,
)
from mmseg_contrast.models.utils.memory_bank import ddp_ignore_memory_banks
from mmseg_contrast.options import check_bool, check_nonneg_int


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def _contrast_heads(model) -> List[Tuple[str, PixelContrastMixin]]:
    return [(name, m) for name, m in _unwrap(model).named_modules()
            if isinstance(m, PixelContrastMixin)]


@HOOKS.register_module()
class PixelMemoryBankHook(Hook):
    """Enqueue the keys of the last step into each contrast head's memory
    bank, after the optimizer step.

    The bank itself all-gathers what each rank writes (its sampled pixels
    and segment means, with their classes), so every rank applies the
    identical update and holds the identical bank. Broadcasting
    the bank from rank 0 on every forward (torch DDP's
    ``broadcast_buffers=True``) would be pure overhead (19x5000x256 fp32 is
    ~97 MB per queue). mmengine's ``Runner.wrap_model`` already passes
    ``broadcast_buffers=False`` when the config has no
    ``model_wrapper_cfg``; when a ``model_wrapper_cfg`` leaves buffer
    broadcast on, this hook removes the bank buffers from the wrapper's
    broadcast list in ``before_run`` (torch DDP re-reads
    ``parameters_to_ignore`` before every buffer sync). Setting
    ``module._ddp_params_and_buffers_to_ignore`` in ``before_run`` would be
    too late: the Runner builds the wrapper in ``__init__``, before hooks
    exist. The construction-time broadcast still runs, so all ranks start
    from rank 0's (random) bank.

    Pixels whose key cannot be normalised (NaN / inf, a norm that is 0 or
    overflows) are dropped by the bank; their number is logged as
    ``train/bank_nonfinite_keys``. With AMP, a step that the loss
    scaler skipped (inf / NaN gradients: the scale went down during the step)
    enqueues nothing (``train/bank_skipped_step`` is 1 for it).

    Args:
        exclude_from_ddp_broadcast (bool): do the above (a bool, checked
            when built). Default True.
    """

    priority = 'NORMAL'

    def __init__(self, exclude_from_ddp_broadcast: bool = True):
        check_bool(type(self).__name__, 'exclude_from_ddp_broadcast',
                   exclude_from_ddp_broadcast)
        self.exclude_from_ddp_broadcast = exclude_from_ddp_broadcast
        self._scales_before: List[float] = []

    @staticmethod
    def _banked_heads(model) -> List[Tuple[str, PixelContrastMixin]]:
        return [(n, h) for n, h in _contrast_heads(model)
                if h.memory_bank is not None]

    def before_run(self, runner) -> None:
        heads = self._banked_heads(runner.model)
        if not heads:
            raise RuntimeError(
                'PixelMemoryBankHook: the model has no contrast head with a '
                'memory_bank; set decode_head.memory_bank=dict('
                "type='PixelMemoryBank', ...) or drop the hook.")
        for _, head in heads:
            head.memory_bank_consumer = type(self).__name__
        model = runner.model
        if (self.exclude_from_ddp_broadcast
                and isinstance(model, DistributedDataParallel)):
            names = ddp_ignore_memory_banks(model.module)
            model.parameters_to_ignore = set(
                model.parameters_to_ignore) | set(names)
            # refresh the list of buffers DDP broadcasts (torch also does
            # this before every buffer sync)
            model._assign_modules_buffers()

    @staticmethod
    def _loss_scales(runner) -> List[float]:
        """Current scale of every AMP loss scaler of the optimizer
        wrapper(s) (none without AMP)."""
        wrapper = getattr(runner, 'optim_wrapper', None)
        wrappers = (list(wrapper.values()) if hasattr(wrapper, 'values')
                    else [wrapper])
        return [float(w.loss_scaler.get_scale()) for w in wrappers
                if getattr(w, 'loss_scaler', None) is not None]

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._scales_before = self._loss_scales(runner)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        # an AMP loss scaler that found inf/NaN gradients skipped the
        # optimizer step and lowered its scale: the step's keys come from a
        # model whose update was thrown away, enqueue nothing (identical on
        # all ranks: the gradients were all-reduced before the check)
        before, self._scales_before = self._scales_before, []
        skipped = any(a < b for a, b in zip(self._loss_scales(runner),
                                            before))
        heads = self._banked_heads(runner.model)
        for name, head in heads:
            pending = head.pop_pending_keys()
            if pending is None:
                raise RuntimeError(
                    'PixelMemoryBankHook: the contrast head kept no keys in '
                    'this training step (was loss() called?); every rank '
                    'must enqueue in every step.')
            suffix = '' if len(heads) == 1 else f'.{name}'
            hub = getattr(runner, 'message_hub', None)
            if hub is not None and before:  # AMP
                hub.update_scalar(f'train/bank_skipped_step{suffix}',
                                  float(skipped))
            if skipped:
                continue
            bank = head.memory_bank
            bank.enqueue(*pending)
            if hub is not None:
                # pixels whose key was NaN / inf / not normalisable,
                # dropped (all ranks)
                hub.update_scalar(f'train/bank_nonfinite_keys{suffix}',
                                  bank.last_nonfinite)


@HOOKS.register_module()
class ContrastWarmupHook(Hook):
    """Contrast term weight 0 for the first ``warmup_iters`` iterations, then
    the loss's ``loss_weight``.

    Before every training iteration it sets ``contrast_weight_scale`` (0 or
    1) on every ``PixelContrastMixin`` head of the model, on every rank, and
    logs the active weight (``scale * loss_weight``) as the scalar
    ``train/<log_name>`` (default ``contrast_weight``). The name must not
    contain ``'loss'``: mmengine sums every loss-dict key containing
    ``'loss'`` into the total loss, and log readers treat such names as
    loss terms.

    Args:
        warmup_iters (int): number of iterations without the contrast term,
            an int >= 0 (checked when built); 0 disables the warm-up.
            Reference (Cityscapes): 5000.
        log_name (str): name of the logged scalar.
    """

    priority = 'NORMAL'

    def __init__(self, warmup_iters: int = 5000,
                 log_name: str = 'contrast_weight'):
        check_nonneg_int(type(self).__name__, 'warmup_iters', warmup_iters,
                         hint='0 disables the warm-up')
        if 'loss' in log_name:
            raise ValueError('ContrastWarmupHook: log_name must not contain '
                             f"'loss' (mmengine sums such keys), got "
                             f'{log_name!r}')
        self.warmup_iters = warmup_iters
        self.log_name = log_name

    def scale_at(self, iteration: int) -> float:
        """Multiplier of the contrast term at 0-based ``iteration``."""
        return 0. if iteration < self.warmup_iters else 1.

    def before_run(self, runner) -> None:
        if not _contrast_heads(runner.model):
            raise RuntimeError(
                'ContrastWarmupHook: the model has no pixel-contrast head '
                '(e.g. ContrastASPPHead); nothing to warm up.')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        scale = self.scale_at(runner.iter)
        heads = _contrast_heads(runner.model)
        for _, head in heads:
            head.contrast_weight_scale = scale
        for name, head in heads:
            key = self.log_name if len(heads) == 1 else \
                f'{self.log_name}.{name}'
            runner.message_hub.update_scalar(f'train/{key}',
                                             head.contrast_weight)
