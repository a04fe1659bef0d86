"""A dataset of unlabelled images (no label files) for semi-supervised
training."""
import os.path as osp
from typing import List

import mmengine.fileio as fileio
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class UnlabeledImageDataset(BaseSegDataset):
    """Images only: every image under ``data_prefix['img_path']`` ending in
    ``img_suffix``, or the ids listed in ``ann_file`` (a split file with one
    image id per line, as VOC's ``ImageSets/Segmentation/*.txt`` or the
    unlabelled list written by ``tools/dataset_converters``' partial-dataset
    tool; an id may already carry ``img_suffix``).

    Data infos have ``seg_map_path=None`` and ``unlabeled=True``; the
    pipeline must not load annotations, so ``PackSegInputs`` /
    :class:`PackSemiInputs` produce data samples **without** ``gt_sem_seg``,
    which is how :class:`SemiDataPreProcessor` tells unlabelled samples from
    labelled ones in a mixed batch.

    To concatenate with a labelled dataset in mmengine's ``ConcatDataset``,
    either pass the labelled dataset's ``metainfo`` (classes, palette) or use
    ``ConcatDataset(..., ignore_keys=['classes', 'palette'])``.
    """

    METAINFO = dict()

    def __init__(self, img_suffix: str = '.jpg', **kwargs) -> None:
        kwargs.setdefault('data_prefix', dict(img_path=''))
        super().__init__(img_suffix=img_suffix, **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '')
        names = []
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(
                    f'UnlabeledImageDataset: split file {self.ann_file!r} '
                    f'not found')
            for line in fileio.list_from_file(
                    self.ann_file, backend_args=self.backend_args):
                line = line.strip()
                if not line:
                    continue
                if not line.endswith(self.img_suffix):
                    line = line + self.img_suffix
                names.append(line)
        else:
            names = sorted(
                fileio.list_dir_or_file(
                    dir_path=img_dir,
                    list_dir=False,
                    suffix=self.img_suffix,
                    recursive=True,
                    backend_args=self.backend_args))
        if not names:
            raise ValueError(
                f'UnlabeledImageDataset found no image ending in '
                f'{self.img_suffix!r} (img_path={img_dir!r}, '
                f'ann_file={self.ann_file!r})')
        return [
            dict(
                img_path=osp.join(img_dir, name),
                seg_map_path=None,
                unlabeled=True,
                label_map=self.label_map,
                reduce_zero_label=self.reduce_zero_label,
                seg_fields=[]) for name in names
        ]
