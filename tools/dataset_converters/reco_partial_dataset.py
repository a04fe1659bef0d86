"""ReCo few-label protocol *partial dataset, full labels*: choose N labelled
images (seeded, class balanced, each with >= min_classes classes) from the
training set of any mmseg dataset config, and write two split files in
mmseg ``ann_file`` format (labelled, unlabelled-rest), sorted by name.

Example (5 % of the AAL training slices, as the ReCo demo configs expect)::

    python tools/dataset_converters/reco_partial_dataset.py \
        configs/baseline/deeplabv3_mnv2_aal_cpu.py --fraction 0.05 \
        --min-classes 1 --seed 0 \
        --labeled-file data/aal_slices/splits/train_labeled_5pct_seed0.txt \
        --unlabeled-file data/aal_slices/splits/train_unlabeled_5pct_seed0.txt

ReCo's settings: Pascal ``--num-labels 60/200/600 --min-classes 3``
(background counts), CityScapes ``--num-labels 20 --min-classes 12``.
"""
import argparse
import os.path as osp

from mmengine.config import Config, DictAction

import mmseg_contrast  # noqa: F401  (compat layer + registration)
from mmseg_contrast.datasets import few_label


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='mmseg config with the training dataset')
    n = p.add_mutually_exclusive_group(required=True)
    n.add_argument('--num-labels', type=int,
                   help='number of labelled images (0 = all)')
    n.add_argument('--fraction', type=float,
                   help='labelled fraction of the images, rounded, >= 1')
    p.add_argument('--min-classes', type=int, default=1,
                   help='minimum distinct classes per labelled image')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--dataset-key', default='train_dataloader.dataset',
                   help='dotted path of the dataset config in the config')
    p.add_argument('--ignore-index', type=int, default=255)
    p.add_argument('--labeled-file', default=None,
                   help='default: <data_root>/splits/labeled_<N>_seed<S>.txt')
    p.add_argument('--unlabeled-file', default=None,
                   help='default: <data_root>/splits/unlabeled_<N>_seed<S>'
                   '.txt')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def get_key(cfg, dotted):
    node = cfg
    for k in dotted.split('.'):
        node = node[k]
    return node


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    ds_cfg = get_key(cfg, args.dataset_key)
    dataset = few_label.build_label_dataset(ds_cfg)
    names, sets = few_label.dataset_class_sets(dataset, args.ignore_index)
    if args.num_labels is not None:
        num = args.num_labels
    else:
        if not 0 < args.fraction <= 1:
            raise SystemExit(f'--fraction must be in (0, 1], '
                             f'got {args.fraction}')
        num = max(1, int(round(args.fraction * len(names))))
    labeled, unlabeled = few_label.select_labeled_subset(
        names, sets, num, min_classes=args.min_classes, seed=args.seed,
        num_classes=len(dataset.metainfo['classes']))
    root = dataset.data_root or '.'
    lf = args.labeled_file or osp.join(
        root, 'splits', f'labeled_{num}_seed{args.seed}.txt')
    uf = args.unlabeled_file or osp.join(
        root, 'splits', f'unlabeled_{num}_seed{args.seed}.txt')
    few_label.write_split_files(labeled, unlabeled, lf, uf)
    print(f'{len(labeled)} labelled / {len(unlabeled)} unlabelled of '
          f'{len(names)} images -> {lf}, {uf}')
    return lf, uf


if __name__ == '__main__':
    main()
