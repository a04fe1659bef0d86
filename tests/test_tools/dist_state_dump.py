"""Test-only hook for the launcher tests: every rank writes what it holds.

Imported by the launched ``tools/train.py`` processes through
``custom_imports`` (with this folder on ``PYTHONPATH``) and enabled with
``default_hooks.rank_dump.type=DumpRankStateHook``. After training each rank
saves ``rank<r>_state.pth`` in the work dir: the unwrapped model's state dict
and, per class, how many (image, class) segments its own batches enqueued.
"""
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from mmseg_contrast.models.decode_heads import PixelContrastMixin


def _module(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class DumpRankStateHook(Hook):
    # before PixelMemoryBankHook (NORMAL) pops the stashed keys
    priority = 'VERY_HIGH'

    def __init__(self):
        self.segments = None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        for m in _module(runner.model).modules():
            if isinstance(m, PixelContrastMixin) and m._pending_keys:
                labels = m._pending_keys[1]
                C = m.num_classes
                present = torch.stack([
                    torch.bincount(lab[(lab >= 0) & (lab < C)], minlength=C)
                    > 0 for lab in labels.flatten(1)
                ])
                seg = present.sum(0)
                self.segments = seg if self.segments is None else \
                    self.segments + seg

    def after_train(self, runner):
        state = {k: v.detach().cpu().clone()
                 for k, v in _module(runner.model).state_dict().items()}
        torch.save(
            dict(state_dict=state, segments=self.segments,
                 world_size=get_world_size(), iter=runner.iter),
            osp.join(runner.work_dir, f'rank{get_rank()}_state.pth'))
