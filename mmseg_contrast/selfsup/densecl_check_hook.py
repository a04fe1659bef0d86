"""Validate a DenseCL pre-training run before its first iteration."""
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

from .densecl import (
    DenseCLConfigError,
    check_densecl_backbone_output,
    check_densecl_queue,
    check_densecl_static,
    own_image_in_queue_prob,
    suggest_queue_len,
)

__all__ = ['DenseCLCheckHook']


@HOOKS.register_module()
class DenseCLCheckHook(Hook):
    """Check DenseCL's queue and grid constraints in ``before_train``.

    Registered in mmpretrain's ``HOOKS`` (DenseCL configs run with
    ``default_scope='mmpretrain'``). Works with mmpretrain's plain
    ``DenseCL`` and with :class:`~mmseg_contrast.models.CheckedDenseCL`:

    * ``queue_len`` is a multiple of ``batch_size x world_size``;
    * no partial batch can occur (``drop_last=True``, an
      ``InfiniteSampler``, or the per-process sample count divisible by the
      batch size) and an epoch has at least one iteration;
    * one dummy forward of the backbone (eval mode, no grad, one image of
      the size the pipeline produces) matches the neck (one feature map,
      channels, ``num_grid``);
    * the queue is short against the dataset: the probability that the
      queue holds a key of the query's own image (a false negative,
      :func:`~mmseg_contrast.selfsup.densecl.own_image_in_queue_prob`)
      is at most ``max_own_key_prob``; otherwise a warning (or, with
      ``strict_queue=True``, an error) gives the numbers and the longest
      queue that satisfies it. ImageNet's 65536 keys over 1.28M images:
      0.13 %; a queue of 64 over 82 images: 38 %.

    Args:
        probe_input (bool): run the dummy forward (reads one training
            sample to get the crop size). Defaults to True.
        max_own_key_prob (float): the largest acceptable probability of a
            query's own image in the queue. Defaults to 0.05.
        strict_queue (bool): raise instead of warning. Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, probe_input=True, max_own_key_prob=0.05,
                 strict_queue=False):
        if not 0. < max_own_key_prob <= 1.:
            raise ValueError(f'max_own_key_prob must be in (0, 1], got '
                             f'{max_own_key_prob}')
        self.probe_input = probe_input
        self.max_own_key_prob = max_own_key_prob
        self.strict_queue = strict_queue

    def before_train(self, runner):
        model = get_ori_model(runner.model)
        if not hasattr(model, 'queue_len') or not hasattr(model, 'neck'):
            raise DenseCLConfigError(
                'DenseCLCheckHook: the model is not a DenseCL model '
                f'({type(model).__name__})')
        check_densecl_static(model)
        loader = runner.train_dataloader
        batch_size = loader.batch_size
        world_size = get_world_size()
        check_densecl_queue(model.queue_len, batch_size, world_size)
        # an infinite sampler always yields full batches
        infinite = isinstance(loader.sampler, InfiniteSampler)
        per_rank = len(loader.sampler) if hasattr(loader.sampler,
                                                  '__len__') else None
        if per_rank is not None and not infinite and loader.drop_last \
                and per_rank < batch_size:
            raise DenseCLConfigError(
                f'DenseCL: each process gets {per_rank} images but the '
                f'batch size is {batch_size} with drop_last=True: an epoch '
                'would have no iteration. Use a smaller batch size or more '
                'images.')
        if per_rank is not None and not infinite and not loader.drop_last \
                and per_rank % batch_size != 0:
            raise DenseCLConfigError(
                f'DenseCL: drop_last=False with {per_rank} images per '
                f'process and batch size {batch_size} gives a last batch '
                f'of {per_rank % batch_size} images, which breaks the '
                f'queue update (queue_len={model.queue_len} must be a '
                'multiple of every global batch). Set '
                'train_dataloader.drop_last=True.')
        self._check_queue_vs_dataset(runner, model.queue_len,
                                     batch_size * world_size)
        if self.probe_input:
            self._probe(runner, model)

    def _check_queue_vs_dataset(self, runner, queue_len, global_batch):
        dataset = runner.train_dataloader.dataset
        if not hasattr(dataset, '__len__'):
            return
        n = len(dataset)
        p = own_image_in_queue_prob(n, queue_len, global_batch)
        if p <= self.max_own_key_prob:
            return
        best = suggest_queue_len(n, global_batch, self.max_own_key_prob)
        fix = (f'use queue_len={best} (P = '
               f'{own_image_in_queue_prob(n, best, global_batch):.1%})'
               if best is not None else
               'no multiple of the global batch is short enough: use a '
               'smaller batch or more images')
        msg = (f'DenseCL: queue_len={queue_len} with {n} training images '
               f'and a global batch of {global_batch}: the queue holds a key '
               f"of the query's own image (a false negative) for {p:.1%} of "
               f'the queries (limit max_own_key_prob='
               f'{self.max_own_key_prob:.0%}); {fix}. The paper: 65536 keys '
               f'over 1.28M images, 0.13%.')
        if self.strict_queue:
            raise DenseCLConfigError(msg)
        runner.logger.warning(msg)

    @torch.no_grad()
    def _probe(self, runner, model):
        sample = runner.train_dataloader.dataset[0]
        inputs = sample['inputs']
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise DenseCLConfigError(
                'DenseCL: the pipeline must produce two views per image '
                '(MultiView(num_views=2, ...)), got '
                f'{type(inputs).__name__}')
        shape = tuple(inputs[0].shape)
        device = next(model.parameters()).device
        x = torch.zeros((1, ) + shape, device=device)
        was_training = model.backbone.training
        model.backbone.eval()
        try:
            feats = model.backbone(x)
        finally:
            model.backbone.train(was_training)
        check_densecl_backbone_output(feats, model.neck)
        runner.logger.info(
            f'DenseCLCheckHook: queue_len={model.queue_len}, global batch '
            f'{runner.train_dataloader.batch_size * get_world_size()}, input '
            f'{shape[-2]}x{shape[-1]} -> dense grid '
            f'{feats[0].shape[-2]}x{feats[0].shape[-1]}: OK')
