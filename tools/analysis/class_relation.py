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
"""
import argparse
import csv
import os
import os.path as osp
import sys

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mmseg_contrast  # noqa: E402,F401  (compat layer + registration)

from mmengine.config import DictAction  # noqa: E402


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


def _heatmap(ax, fig, mat, names, lo, hi, label, title, mask_diag=False):
    import matplotlib
    import numpy as np
    k = len(names)
    cmap = matplotlib.colormaps['viridis'].copy()
    cmap.set_bad('0.85')
    shown = np.ma.masked_where(np.eye(k, dtype=bool), mat) \
        if mask_diag else mat
    im = ax.imshow(shown, cmap=cmap, vmin=lo, vmax=hi)
    mid = (lo + hi) / 2
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names, rotation=90, fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if mask_diag and i == j:
                    continue
                ax.text(j, i, f'{mat[i, j]:.2f}', ha='center', va='center',
                        fontsize=5.5,
                        color='white' if mat[i, j] < mid else 'black')
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.set_title(title, fontsize=10)


def plot_matrix(names, cos, neg, tau, title, out):
    """Cosine matrix (left) and ReCo's negative-class sampling
    distribution derived from it (right)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    k = len(names)
    size = max(4.5, 0.42 * k + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 2.0, size))
    off = cos[~np.eye(k, dtype=bool)]
    # ReLU features give only positive cosines: scale to the data range
    lo = float(min(off.min(), 0.99)) if off.size else -1.0
    _heatmap(axes[0], fig, cos, names, lo, 1.0,
             'cosine similarity of class means', f'{title}\nrelation graph')
    off_neg = neg[~np.eye(k, dtype=bool)]
    _heatmap(axes[1], fig, neg, names, float(off_neg.min()),
             float(off_neg.max()), 'P(negative key class | query class)',
             f'ReCo negative-class sampling (tau={tau:g})\n'
             f'rows: query class, columns: negative key class',
             mask_diag=True)
    fig.tight_layout(w_pad=3.0)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def plot_dendrogram(names, Z, colors, title, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import dendrogram
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(names) + 2), 4.2))
    d = dendrogram(Z, labels=names, ax=ax, leaf_rotation=90,
                   color_threshold=0.7 * Z[:, 2].max(),
                   above_threshold_color='0.4')
    for lbl in ax.get_xmajorticklabels():
        lbl.set_fontsize(8)
        c = colors.get(lbl.get_text())
        if c is not None:
            lbl.set_bbox(dict(facecolor=c, edgecolor='none', alpha=0.35,
                              pad=1))
    ax.set_ylabel('cosine distance')
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return d['ivl']


def main(argv=None):
    from mmseg_contrast.tooling.embedding_analysis import (
        build_dataloader, class_relation, collect_embeddings, init_segmentor,
        palette_colors, reco_negative_distribution)
    args = parse_args(argv)
    model, cfg = init_segmentor(args.config, args.checkpoint,
                                args.cfg_options, args.device)
    loader = build_dataloader(cfg, args.split, args.max_images)
    meta = getattr(model, 'dataset_meta', None) or loader.dataset.metainfo
    classes = list(meta['classes'])
    res = collect_embeddings(
        model, loader, len(classes), embedding=args.embedding,
        pixels_per_image=0, max_per_class=0)
    names, cos, Z = class_relation(res['sums'], res['counts'], classes,
                                   args.linkage)
    missing = [c for c in classes if c not in names]
    if missing:
        print(f'not in the {args.split} split (left out): '
              f'{", ".join(missing)}')
    title = (args.title or osp.splitext(osp.basename(args.config))[0]) + \
        f' ({res["kind"]} embedding)'
    out_dir = osp.dirname(osp.abspath(args.out_prefix))
    os.makedirs(out_dir, exist_ok=True)
    png = f'{args.out_prefix}_relation.png'
    csv_path = f'{args.out_prefix}_relation.csv'
    dendro = f'{args.out_prefix}_dendrogram.png'
    neg = reco_negative_distribution(cos, args.reco_tau)
    plot_matrix(names, cos, neg, args.reco_tau, title, png)
    with open(csv_path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['class'] + names)
        for n, row in zip(names, cos):
            w.writerow([n] + [f'{v:.6f}' for v in row])
    rgb = palette_colors(meta.get('palette'), len(classes))
    colors = {c: tuple(rgb[i]) for i, c in enumerate(classes)}
    order = plot_dendrogram(names, Z, colors, title, dendro)
    off = cos[~__import__('numpy').eye(len(names), dtype=bool)]
    print(f'{len(names)} classes; mean off-diagonal cosine {off.mean():.4f}'
          f' (max {off.max():.4f}); dendrogram leaf order: '
          f'{" ".join(order)}')
    print(f'saved {png}, {csv_path}, {dendro}')
    return dict(names=names, cos=cos, linkage=Z, order=order, png=png,
                kind=res['kind'], negative_distribution=neg,
                csv=csv_path, dendrogram=dendro)


if __name__ == '__main__':
    main()
