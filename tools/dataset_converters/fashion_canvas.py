"""Prepare ``data/fashion_canvas``: multi-object canvases composed from
Fashion-MNIST (Debian's ``dataset-fashion-mnist``), the accuracy suite's
data set (idempotent, cached).

    python tools/dataset_converters/fashion_canvas.py [--data-root data]

``prepare_offline_data.py --all`` / ``--fashion`` (``make data``) prepares
the same set. The recipe (2 to 4 real photos per 64 x 64 canvas, mask =
silhouette x class, 11 classes; train 2000 / val 300 / test 500 canvases
from disjoint photo ranges; labelled subsets chosen by ReCo's selector) is
documented and implemented in :mod:`mmseg_contrast.tooling.data.
fashion_canvas`.
"""
import argparse
import logging
import time

from mmseg_contrast.tooling.data import cache_dir, prepare_fashion_canvas


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-root', default='data',
                   help='where prepared data go (default: data)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format='[fashion-canvas] %(message)s')
    print(f'[fashion-canvas] cache: {cache_dir()}')
    t0 = time.perf_counter()
    path = prepare_fashion_canvas(args.data_root)
    print(f'[fashion-canvas] {path} ({time.perf_counter() - t0:.1f} s)')
    return path


if __name__ == '__main__':
    main()
