"""ReCo few-label protocol *partial labels, full dataset*: for every image of
the training set of any mmseg dataset config and every class in it, keep one
seed pixel grown by 5x5 dilation (within the class) until 1 pixel (p0),
1 % (p1), 5 % (p5) or 25 % (p25) of the class is labelled; the rest becomes
ignore. Writes label PNGs with the same relative paths (and palette) under
``--out-dir``; point the dataset's ``data_prefix.seg_map_path`` there.

Example::

    python tools/dataset_converters/reco_partial_labels.py \
        configs/baseline/deeplabv3_mnv2_aal_cpu.py --mode p0 --seed 0 \
        --out-dir data/aal_slices/ann_dir_p0_seed0/train
"""
import argparse

from mmengine.config import Config, DictAction

import mmseg_contrast  # noqa: F401  (compat layer + registration)
from mmseg_contrast.datasets import few_label


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='mmseg config with the training dataset')
    p.add_argument('--mode', required=True,
                   help="'p0' (1 pixel), 'p1' (1%%), 'p5', 'p25', or a "
                   'fraction in [0, 1]')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', required=True)
    p.add_argument('--dataset-key', default='train_dataloader.dataset')
    p.add_argument('--ignore-index', type=int, default=255)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    mode = args.mode if args.mode in few_label.PARTIAL_MODES else float(
        args.mode)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    node = cfg
    for k in args.dataset_key.split('.'):
        node = node[k]
    dataset = few_label.build_label_dataset(node)
    written = few_label.write_partial_labels(
        dataset, mode, args.seed, args.out_dir,
        ignore_index=args.ignore_index)
    print(f'wrote {len(written)} partial label maps ({args.mode}, seed '
          f'{args.seed}) to {args.out_dir}')
    return written


if __name__ == '__main__':
    main()
