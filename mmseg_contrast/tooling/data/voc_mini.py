"""``data/voc_mini``: 3 real PASCAL VOC 2011 images from Debian's
``labelme-examples``, in VOC layout."""
import os
import os.path as osp
import shutil

from PIL import Image

from .cache import OfflineDataError, prepare_once
from .fetch import fetch_deb

__all__ = ['LABELME_DEB', 'VOC_SRC', 'VOC_SPLITS', 'prepare_voc_mini']

LABELME_DEB = 'labelme-examples'
VOC_SRC = ('usr/share/doc/labelme-examples/examples/semantic_segmentation/'
           'data_dataset_voc')
VOC_SPLITS = {
    'train': ('2011_000003', '2011_000006'),
    'val': ('2011_000025', ),
}


def prepare_voc_mini(data_root='data'):
    """``data_root/voc_mini``: 3 real VOC 2011 images in VOC layout.

    From ``labelme-examples``: ``JPEGImages/*.jpg``,
    ``SegmentationClass/*.png``
    (palette PNGs holding VOC indices, 255 = boundary/ignore; copied
    unchanged from the package's ``SegmentationClassPNG``) and
    ``ImageSets/Segmentation/{train,val,trainval}.txt`` (train: 2011_000003,
    2011_000006; val: 2011_000025). Loadable by mmseg's ``PascalVOCDataset``
    (``data_root=<this>, data_prefix=dict(img_path='JPEGImages',
    seg_map_path='SegmentationClass'), ann_file='ImageSets/Segmentation/
    train.txt'``).

    Returns:
        str: the data set root.
    """
    root = osp.join(data_root, 'voc_mini')

    def build(tmp):
        src = osp.join(fetch_deb(LABELME_DEB), VOC_SRC)
        for sub in ('JPEGImages', 'SegmentationClass',
                    'ImageSets/Segmentation'):
            os.makedirs(osp.join(tmp, sub))
        for split, ids in VOC_SPLITS.items():
            for i in ids:
                shutil.copy2(
                    osp.join(src, 'JPEGImages', i + '.jpg'),
                    osp.join(tmp, 'JPEGImages', i + '.jpg'))
                png = osp.join(src, 'SegmentationClassPNG', i + '.png')
                with Image.open(png) as im:
                    if im.mode != 'P':
                        raise OfflineDataError(
                            f'{png} is mode {im.mode}, expected a palette PNG')
                shutil.copy2(png, osp.join(tmp, 'SegmentationClass',
                                           i + '.png'))
        for split, ids in list(VOC_SPLITS.items()) + [
                ('trainval', sum(VOC_SPLITS.values(), ()))]:
            with open(osp.join(tmp, 'ImageSets/Segmentation',
                               split + '.txt'), 'w') as f:
                f.write('\n'.join(ids) + '\n')
        shutil.copy2(osp.join(src, 'class_names.txt'),
                     osp.join(tmp, 'class_names.txt'))
        return dict(source=LABELME_DEB, splits=VOC_SPLITS)

    prepare_once('voc_mini', root, build)
    return root
