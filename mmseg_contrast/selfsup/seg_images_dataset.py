"""Feed the images of any mmseg dataset to mmpretrain self-supervision.

:class:`SegImagesDataset` is registered into **mmpretrain's** ``DATASETS``
registry (the scope DenseCL pre-training configs run in,
``default_scope='mmpretrain'``). It builds one or more mmseg datasets from
their usual configs (``PascalVOCDataset``, ``CityscapesDataset``,
``COCOStuffDataset``, ``AALSliceDataset``, ...) *in the mmseg scope*, keeps
only their image paths (labels unused) and runs mmpretrain's pipeline on them,
e.g. the MoCo-v2 two-view pipeline
``LoadImageFromFile -> MultiView(2, view_pipeline) -> PackInputs``.
"""
import copy

from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS
from mmseg.registry import DATASETS as SEG_DATASETS

__all__ = ['SegImagesDataset']


@DATASETS.register_module()
class SegImagesDataset(BaseDataset):
    """The images of one or several mmseg datasets, without labels.

    Args:
        seg_dataset (dict | list[dict]): mmseg dataset config(s) (``type``
            from ``mmseg.registry.DATASETS``). Their ``pipeline`` is ignored;
            they are built in the ``mmseg`` scope unless a ``_scope_`` is
            given. Image lists of several datasets are concatenated.
        pipeline (list[dict]): transforms (mmpretrain scope) applied to
            ``dict(img_path=...)``.
        unique (bool): drop repeated image paths (e.g. a VOC split listed
            twice, or overlapping datasets). Defaults to True.
        **kwargs: forwarded to :class:`mmengine.dataset.BaseDataset`
            (``serialize_data``, ``lazy_init``, ``max_refetch``, ...).
    """

    METAINFO = dict(classes=None)

    def __init__(self, seg_dataset, pipeline=(), unique=True, **kwargs):
        if isinstance(seg_dataset, dict):
            seg_dataset = [seg_dataset]
        if not isinstance(seg_dataset, (list, tuple)) or not seg_dataset or \
                not all(isinstance(c, dict) and 'type' in c
                        for c in seg_dataset):
            raise TypeError(
                'SegImagesDataset.seg_dataset must be an mmseg dataset config '
                "dict with a 'type' (or a non-empty list of them), got "
                f'{seg_dataset!r}')
        for bad in ('ann_file', 'data_root', 'data_prefix'):
            if bad in kwargs:
                raise TypeError(
                    f'SegImagesDataset takes no {bad!r}: set it inside '
                    'seg_dataset (the mmseg dataset config)')
        self.seg_dataset_cfgs = [copy.deepcopy(dict(c)) for c in seg_dataset]
        self.unique = unique
        super().__init__(pipeline=list(pipeline), **kwargs)

    def _image_paths(self, cfg):
        cfg = copy.deepcopy(cfg)
        cfg['pipeline'] = []
        cfg['lazy_init'] = False
        cfg['serialize_data'] = False  # only the paths are kept
        cfg.setdefault('_scope_', 'mmseg')
        try:
            dataset = SEG_DATASETS.build(cfg)
        except KeyError as e:
            raise KeyError(
                f'SegImagesDataset: cannot build the mmseg dataset '
                f'{cfg.get("type")!r} ({e}); is it registered in '
                'mmseg.registry.DATASETS?') from e
        paths = [
            dataset.get_data_info(i)['img_path'] for i in range(len(dataset))
        ]
        if not paths:
            raise ValueError(
                f'SegImagesDataset: the mmseg dataset {cfg.get("type")!r} '
                f'(data_root={cfg.get("data_root")!r}, data_prefix='
                f'{cfg.get("data_prefix")!r}) has no images')
        return paths

    def load_data_list(self):
        paths = []
        for cfg in self.seg_dataset_cfgs:
            paths.extend(self._image_paths(cfg))
        if self.unique:
            paths = list(dict.fromkeys(paths))
        return [dict(img_path=p, sample_idx=i) for i, p in enumerate(paths)]
