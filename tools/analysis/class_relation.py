"""Class-relation graph and dendrogram (ReCo's visualisation).

Class-mean embeddings are accumulated over every labelled feature pixel of
the validation set (projection-head embedding if the head has one, else the
pre-classifier feature; each pixel L2-normalised first). The tool writes

* ``<prefix>_relation.png``: heat map of the pairwise cosine similarity of
  the class means ("semantic class relation graph"), with class names, next
  to the negative-class sampling distribution ReCo derives from it
  (row-wise softmax of cos / tau over the other classes, tau = 0.5);
* ``<prefix>_relation.csv``: the same matrix (header row/column = classes);
* ``<prefix>_dendrogram.png``: SciPy hierarchical clustering of the class
  means (cosine distance, ``--linkage`` method, average by default).

Classes that never occur in the split are left out (and reported)::

    python tools/analysis/class_relation.py CONFIG CHECKPOINT \
        --out-prefix docs/figures/contrast

The library is :mod:`mmseg_contrast.tooling.figures.relation`.
"""
import argparse

from mmengine.config import DictAction

from mmseg_contrast.tooling.figures.relation import relation_figures


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Class-mean embedding cosine matrix and dendrogram')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file or http(s) URL')
    p.add_argument('--out-prefix', default='class_relation',
                   help='output prefix (folder/name)')
    p.add_argument('--title', help='figure title (default: config stem)')
    p.add_argument('--split', default='val', choices=['val', 'test', 'train'])
    p.add_argument('--embedding', default='auto',
                   choices=['auto', 'proj', 'feature'])
    p.add_argument('--linkage', default='average',
                   choices=['average', 'complete', 'single', 'weighted'])
    p.add_argument('--reco-tau', type=float, default=0.5,
                   help="temperature of ReCo's negative-class sampling "
                   'softmax over the relation graph')
    p.add_argument('--max-images', type=int, default=0,
                   help='use only the first N images (0 = all)')
    p.add_argument('--device', default='cpu')
    p.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    return relation_figures(
        args.config, args.checkpoint, out_prefix=args.out_prefix,
        title=args.title, split=args.split, embedding=args.embedding,
        linkage=args.linkage, reco_tau=args.reco_tau,
        max_images=args.max_images, device=args.device,
        cfg_options=args.cfg_options)


if __name__ == '__main__':
    main()
