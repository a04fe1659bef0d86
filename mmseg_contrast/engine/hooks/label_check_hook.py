"""Fail fast, naming the file, on label values the model cannot learn.

A label value ``v`` with ``v >= num_classes`` (or ``v < 0``) that is not the
head's ``ignore_index`` otherwise surfaces as torch's ``Target 40 is out of
bounds`` inside the cross-entropy on CPU (a device-side assert on CUDA), which
names neither the label file nor ``num_classes``; the pixel-contrast and
memory-bank code would treat it as a class or drop it silently.
"""
from typing import List, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import HOOKS

from mmseg_contrast.datasets.samplers import check_loader_batch_size

__all__ = ['LabelRangeCheckHook', 'find_bad_labels']


def find_bad_labels(labels: torch.Tensor, num_classes: int,
                    ignore_index: int) -> List[int]:
    """Sorted values of ``labels`` outside ``[0, num_classes)`` that are not
    ``ignore_index`` (at most 10); ``[]`` when all are valid. One
    ``aminmax`` pass decides the common all-valid case."""
    lo, hi = torch.aminmax(labels)
    if int(lo) >= 0 and int(hi) < num_classes:
        return []
    bad = ((labels >= num_classes) | (labels < 0)) & (labels != ignore_index)
    if not bool(bad.any()):
        return []
    return torch.unique(labels[bad])[:10].tolist()


@HOOKS.register_module()
class LabelRangeCheckHook(Hook):
    """Check each training batch's labels on the CPU before the model sees
    them, and raise one ``ValueError`` naming the label file, the values,
    ``num_classes``, ``ignore_index`` and the fix.

    The limits come from every mmseg decode head of the model (decode and
    auxiliary heads, a semi-supervised student and teacher); samples without
    ``gt_sem_seg`` (unlabelled ones) are skipped. The check reads the
    collated batch that ``before_train_iter`` receives, i.e. CPU tensors
    before the transfer to the device: one vectorised pass per image, no
    device synchronisation (labels already on an accelerator are not
    checked). ``tools/train.py`` adds this hook to every config; with
    mmseg's own ``tools/train.py`` add
    ``custom_hooks=[dict(type='mmseg.LabelRangeCheckHook')]``.

    ``before_train`` also checks that a :class:`MultiSourceSampler` train
    loader batches exactly the sampler's ``batch_size``
    (:func:`~mmseg_contrast.datasets.samplers.check_loader_batch_size`):
    otherwise the batches alternate between the sources instead of mixing
    them.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._limits: List[Tuple[int, int, str]] = []
        self._dataset = ''

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        seen = {}
        for name, m in model.named_modules():
            if isinstance(m, BaseDecodeHead):
                key = (int(m.num_classes), int(m.ignore_index))
                seen.setdefault(key, f'model.{name}')
        self._limits = [(c, i, where) for (c, i), where in seen.items()]
        check_loader_batch_size(getattr(runner, 'train_dataloader', None))
        try:
            dataset = runner.train_dataloader.dataset
            classes = dataset.metainfo.get('classes') or ()
            self._dataset = (f'; the dataset {type(dataset).__name__} '
                             f'declares {len(classes)} classes'
                             if classes else '')
        except Exception:
            self._dataset = ''

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not self._limits or not isinstance(data_batch, dict):
            return
        for ds in data_batch.get('data_samples') or ():
            if 'gt_sem_seg' not in ds or ds.metainfo.get('unlabeled', False):
                continue
            labels = ds.gt_sem_seg.data
            if labels.device.type != 'cpu':
                continue
            for num_classes, ignore_index, where in self._limits:
                bad = find_bad_labels(labels, num_classes, ignore_index)
                if bad:
                    raise ValueError(self._message(ds, bad, num_classes,
                                                   ignore_index, where))

    def _message(self, ds, bad, num_classes, ignore_index, where) -> str:
        path = ds.metainfo.get('seg_map_path') or \
            ds.metainfo.get('img_path') or '(unknown file)'
        rz = ds.metainfo.get('reduce_zero_label', None)
        return (
            f'Label file {path} holds value(s) {bad} outside '
            f'[0, {num_classes}) that are not ignore_index={ignore_index}: '
            f'{where} predicts num_classes={num_classes}{self._dataset} '
            f'(values after the pipeline, reduce_zero_label={rz}). Fix: set '
            f'{where}.num_classes (and the dataset classes) to cover them; '
            f'or map them to {ignore_index} in the label files or with the '
            f"dataset's label_map; or use reduce_zero_label=True if 0 marks "
            f'unlabelled pixels (ADE20K-style labels); or set '
            f'{where}.ignore_index to the value that marks unlabelled '
            f'pixels.')
