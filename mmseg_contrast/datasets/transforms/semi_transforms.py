"""Transforms for semi-supervised training: a strong (photometric) view of
the same crop, and packing that keeps it."""
import copy

import numpy as np
import torch
from mmcv.transforms import BaseTransform, Compose
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class StrongView(BaseTransform):
    """Add ``results['img_strong']``: the current image passed through
    ``transforms`` (photometric only: colour jitter, blur, ...).

    Put it after the geometric transforms of the unlabelled pipeline: the
    weak view (``img``, crop/flip only) is what the teacher pseudo-labels, the
    strong view is what the student learns from (after batch mixing in
    ``SemiSegmentor``). Both views share the geometry, so pseudo-labels need
    no re-projection.
    """

    def __init__(self, transforms):
        self.pipeline = Compose(transforms)

    def transform(self, results: dict) -> dict:
        view = copy.deepcopy(
            {k: v for k, v in results.items() if k != 'img_strong'})
        view = self.pipeline(view)
        if view is None:
            raise RuntimeError('StrongView: a transform dropped the sample')
        img = view['img']
        if img.shape[:2] != results['img'].shape[:2]:
            raise ValueError(
                f'StrongView transforms must be photometric only (same '
                f'size): got {img.shape[:2]} from {results["img"].shape[:2]}')
        results['img_strong'] = img
        return results

    def __repr__(self):
        return f'{type(self).__name__}(transforms={self.pipeline})'


@TRANSFORMS.register_module()
class PackSemiInputs(PackSegInputs):
    """``PackSegInputs`` that also packs ``results['img_strong']`` into the
    data sample's ``img_strong`` field (a CHW tensor, BGR like ``inputs``)
    and the ``unlabeled`` flag into the metainfo."""

    def __init__(self, meta_keys=('img_path', 'seg_map_path', 'ori_shape',
                                  'img_shape', 'pad_shape', 'scale_factor',
                                  'flip', 'flip_direction',
                                  'reduce_zero_label', 'unlabeled')):
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        strong = results.pop('img_strong', None)
        packed = super().transform(results)
        if strong is not None:
            if strong.ndim < 3:
                strong = strong[..., None]
            strong = torch.from_numpy(
                np.ascontiguousarray(strong.transpose(2, 0, 1))).contiguous()
            packed['data_samples'].set_field(strong, 'img_strong')
        return packed
