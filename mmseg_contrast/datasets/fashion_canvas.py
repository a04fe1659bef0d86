"""Fashion-canvas: several Fashion-MNIST product photos per 64x64 canvas.

Prepared by :mod:`mmseg_contrast.tooling.data.fashion_canvas` (``make data``
or ``tools/dataset_converters/fashion_canvas.py``), whose docstring gives the
exact composition recipe: 2-4 real Fashion-MNIST photos (Zalando, human
class labels) per canvas at random positions; each item's mask is its
silhouette (``photo > 25``) times ``class + 1``.

Layout::

    data/fashion_canvas/
        img_dir/{train,val,test}/<split>_NNNNN.png   grey uint8
        ann_dir/{train,val,test}/<split>_NNNNN.png   uint8 class index
        splits/train_{labeled,unlabeled}_{N}_seed{S}.txt

11 classes: background + the 10 Fashion-MNIST classes. Classes do not
depend on position and a horizontal flip preserves every label.
"""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = ['FashionCanvasDataset', 'FASHION_CLASSES']

FASHION_CLASSES = ('background', 'tshirt_top', 'trouser', 'pullover',
                   'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag',
                   'ankle_boot')
FASHION_PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25],
                   [0, 130, 200], [245, 130, 48], [145, 30, 180],
                   [70, 240, 240], [240, 50, 230], [210, 245, 60],
                   [250, 190, 212]]


@DATASETS.register_module()
class FashionCanvasDataset(BaseSegDataset):
    """Multi-object Fashion-MNIST canvases (label 0 = background class)."""

    METAINFO = dict(classes=FASHION_CLASSES, palette=FASHION_PALETTE)

    def __init__(self, img_suffix='.png', seg_map_suffix='.png',
                 reduce_zero_label=False, **kwargs):
        if reduce_zero_label:
            raise ValueError(
                'FashionCanvasDataset: reduce_zero_label must be False '
                '(label 0 is the background class, not an ignore value)')
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=False, **kwargs)
