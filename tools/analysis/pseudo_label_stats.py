"""How informative are a model's pseudo-labels? Per-class statistics of its
confident predictions on a split that has ground truth.

A mean teacher only teaches what its confident pixels say. For every
confidence threshold ``t`` and every ground-truth class ``c`` the tool
reports, over the pixels of the split (ignore pixels left out):

* ``gt_share``: the share of class ``c`` among all pixels;
* ``recall``: the share of ``c``'s pixels that are confident (``max_k p_k
  >= t``) **and** predicted ``c`` (what the unsupervised loss can teach
  about ``c``);
* ``precision``: the share of the confident pixels predicted ``c`` that are
  ``c`` (how often that teaching is wrong);
* ``pseudo_share``: the share of ``c`` among all confident pixels (what the
  unsupervised loss is made of; compare with ``gt_share``);

plus the overall confident fraction and pixel accuracy. It writes a JSON
and prints one table per threshold::

    python tools/analysis/pseudo_label_stats.py CONFIG CHECKPOINT \
        --split val --thresholds 0.7 0.95 --out stats.json

For a ``SemiSegmentor`` checkpoint the branch that predicts
(``semi_test_cfg.predict_on``, the teacher by default) is measured; pass
``--cfg-options model.semi_test_cfg.predict_on=student`` for the student.
``--ann-file`` measures a split file of the chosen loader's images, e.g. the
unlabelled part of a few-label protocol, whose labels the training never
saw (point the test loader at the training images with ``--cfg-options
test_dataloader.dataset.data_prefix.img_path=img_dir/train ...``).

The library is :mod:`mmseg_contrast.tooling.pseudo_label_stats`.
"""
import argparse

from mmengine.config import DictAction

from mmseg_contrast.tooling.pseudo_label_stats import (
    StatsInputError,
    pseudo_label_stats,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Per-class statistics of confident pseudo-labels')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file or http(s) URL')
    p.add_argument('--split', default='val', choices=['val', 'test', 'train'],
                   help="which of the config's dataloaders to read")
    p.add_argument('--ann-file', help='split file (relative to data_root) '
                   'replacing the loader dataset\'s ann_file')
    p.add_argument('--thresholds', type=float, nargs='+',
                   default=[0.7, 0.95])
    p.add_argument('--max-images', type=int, default=0,
                   help='use only the first N images (0 = all)')
    p.add_argument('--out', help='JSON output file')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        return pseudo_label_stats(
            args.config, args.checkpoint, split=args.split,
            ann_file=args.ann_file, thresholds=args.thresholds,
            max_images=args.max_images, out=args.out, device=args.device,
            cfg_options=args.cfg_options)
    except StatsInputError as e:
        raise SystemExit(str(e)) from None


if __name__ == '__main__':
    main()
