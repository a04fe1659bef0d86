"""Data preprocessor for mixed labelled / unlabelled batches."""
from typing import Any, Dict

import torch
from mmengine.structures import PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.utils import stack_batch


def is_labeled(data_sample) -> bool:
    """A sample is labelled iff it carries ``gt_sem_seg`` (unlabelled
    pipelines load no annotation) and is not flagged ``unlabeled``."""
    return ('gt_sem_seg' in data_sample
            and not data_sample.metainfo.get('unlabeled', False))


@MODELS.register_module()
class SemiDataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` that splits a mixed training batch.

    mmseg's ``SegDataPreProcessor`` needs ``gt_sem_seg`` on every training
    sample. Here, in training mode, the batch (e.g. from
    :class:`MultiSourceSampler`) is split into labelled samples (with
    ``gt_sem_seg``) and unlabelled ones (without); each part is normalised,
    padded and stacked like mmseg does, and the output is::

        dict(inputs=dict(sup=Tensor | None,            # (B_l, C, H, W)
                         unsup_weak=Tensor | None,     # teacher view
                         unsup_strong=Tensor | None),  # student view
             data_samples=dict(sup=[...], unsup=[...]))

    ``unsup_strong`` is the ``img_strong`` field packed by
    :class:`PackSemiInputs` (after :class:`StrongView`), else the weak view
    itself. Unlabelled samples get an all-ignore ``gt_sem_seg`` with the
    padded size (the segmentor overwrites it with pseudo-labels) and the
    ``unlabeled=True`` metainfo flag. At test time it is a plain
    ``SegDataPreProcessor``.
    """

    def _normalize(self, inputs):
        if self.channel_conversion and inputs[0].size(0) == 3:
            inputs = [_input[[2, 1, 0], ...] for _input in inputs]
        inputs = [_input.float() for _input in inputs]
        if self._enable_normalize:
            inputs = [(_input - self.mean) / self.std for _input in inputs]
        return inputs

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        if not training:
            return super().forward(data, training)
        data = self.cast_data(data)
        inputs = data['inputs']
        data_samples = data.get('data_samples', None)
        if data_samples is None:
            raise ValueError('SemiDataPreProcessor: training batches need '
                             'data_samples')
        lab = [i for i, ds in enumerate(data_samples) if is_labeled(ds)]
        unl = [i for i, ds in enumerate(data_samples) if not is_labeled(ds)]
        out_inputs = dict(sup=None, unsup_weak=None, unsup_strong=None)
        out_samples = dict(sup=[], unsup=[])
        pad = dict(size=self.size, size_divisor=self.size_divisor,
                   pad_val=self.pad_val, seg_pad_val=self.seg_pad_val)
        if lab:
            sup_samples = [data_samples[i] for i in lab]
            out_inputs['sup'], out_samples['sup'] = stack_batch(
                self._normalize([inputs[i] for i in lab]), sup_samples,
                **pad)
        if unl:
            un_samples = [data_samples[i] for i in unl]
            weak = self._normalize([inputs[i] for i in unl])
            strong = []
            for i, ds in zip(unl, un_samples):
                if 'img_strong' in ds:
                    s = ds.img_strong.to(self.device)
                    ds.pop('img_strong')
                    if s.shape != inputs[i].shape:
                        raise ValueError(
                            f'img_strong shape {tuple(s.shape)} differs from '
                            f'the weak view {tuple(inputs[i].shape)}')
                    strong.append(s)
                else:
                    strong.append(None)
            weak_stacked, un_samples = stack_batch(weak, un_samples, **pad)
            if all(s is None for s in strong):
                strong_stacked = weak_stacked
            else:
                strong = self._normalize(
                    [s if s is not None else inputs[i]
                     for s, i in zip(strong, unl)])
                strong_stacked, _ = stack_batch(strong, None, **pad)
            H, W = weak_stacked.shape[-2:]
            for ds in un_samples:
                ds.set_metainfo(dict(pad_shape=(H, W), unlabeled=True))
                ds.gt_sem_seg = PixelData(data=torch.full(
                    (1, H, W), self.seg_pad_val, dtype=torch.long,
                    device=weak_stacked.device))
            out_inputs['unsup_weak'] = weak_stacked
            out_inputs['unsup_strong'] = strong_stacked
            out_samples['unsup'] = un_samples
        return dict(inputs=out_inputs, data_samples=out_samples)
