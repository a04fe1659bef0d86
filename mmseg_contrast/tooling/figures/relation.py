"""Class-relation graph and dendrogram (ReCo's visualisation;
``tools/analysis/class_relation.py``).

Class-mean embeddings are accumulated over every labelled feature pixel of
the validation set (projection-head embedding if the head has one, else the
pre-classifier feature; each pixel L2-normalised first). It writes

* ``<prefix>_relation.png``: heat map of the pairwise cosine similarity of
  the class means ("semantic class relation graph"), with class names, next
  to the negative-class sampling distribution ReCo derives from it
  (row-wise softmax of cos / tau over the other classes, tau = 0.5);
* ``<prefix>_relation.csv``: the same matrix (header row/column = classes);
* ``<prefix>_dendrogram.png``: SciPy hierarchical clustering of the class
  means (cosine distance, ``--linkage`` method, average by default).

Classes that never occur in the split are left out (and reported).
"""
import csv
import os
import os.path as osp

import numpy as np

from ..embedding_analysis import (
    build_dataloader,
    class_relation,
    collect_embeddings,
    init_segmentor,
    palette_colors,
    reco_negative_distribution,
)

__all__ = ['heatmap', 'plot_matrix', 'plot_dendrogram', 'relation_figures']


def heatmap(ax, fig, mat, names, lo, hi, label, title, mask_diag=False):
    """A ``k x k`` matrix with class names (values written when k <= 25;
    the diagonal greyed out with ``mask_diag``) and its colour bar."""
    import matplotlib
    k = len(names)
    cmap = matplotlib.colormaps['viridis'].with_extremes(bad='0.85')
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
    k = len(names)
    size = max(4.5, 0.42 * k + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 2.0, size))
    off = cos[~np.eye(k, dtype=bool)]
    # ReLU features give only positive cosines: scale to the data range
    lo = float(min(off.min(), 0.99)) if off.size else -1.0
    heatmap(axes[0], fig, cos, names, lo, 1.0,
             'cosine similarity of class means', f'{title}\nrelation graph')
    off_neg = neg[~np.eye(k, dtype=bool)]
    heatmap(axes[1], fig, neg, names, float(off_neg.min()),
             float(off_neg.max()), 'P(negative key class | query class)',
             f'ReCo negative-class sampling (tau={tau:g})\n'
             f'rows: query class, columns: negative key class',
             mask_diag=True)
    fig.tight_layout(w_pad=3.0)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def plot_dendrogram(names, Z, colors, title, out):
    """Dendrogram of the linkage ``Z``, leaf labels tinted with ``colors``
    (``{class: rgb}``); returns the leaf order."""
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


def relation_figures(config, checkpoint, out_prefix='class_relation',
                     title=None, split='val', embedding='auto',
                     linkage='average', reco_tau=0.5, max_images=0,
                     device='cpu', cfg_options=None):
    """Class-mean embeddings of ``checkpoint`` on the ``split`` loader of
    ``config`` -> ``<out_prefix>_relation.png`` / ``_relation.csv`` /
    ``_dendrogram.png`` (see the module docstring); prints a summary.

    Returns:
        dict: ``names``, ``cos``, ``linkage``, ``order`` (dendrogram
        leaves), ``kind`` (embedding), ``negative_distribution`` and the
        paths ``png``, ``csv``, ``dendrogram``.
    """
    model, cfg = init_segmentor(config, checkpoint, cfg_options, device)
    loader = build_dataloader(cfg, split, max_images)
    meta = getattr(model, 'dataset_meta', None) or loader.dataset.metainfo
    classes = list(meta['classes'])
    res = collect_embeddings(
        model, loader, len(classes), embedding=embedding,
        pixels_per_image=0, max_per_class=0)
    names, cos, Z = class_relation(res['sums'], res['counts'], classes,
                                   linkage)
    missing = [c for c in classes if c not in names]
    if missing:
        print(f'not in the {split} split (left out): '
              f'{", ".join(missing)}')
    title = (title or osp.splitext(osp.basename(config))[0]) + \
        f' ({res["kind"]} embedding)'
    out_dir = osp.dirname(osp.abspath(out_prefix))
    os.makedirs(out_dir, exist_ok=True)
    png = f'{out_prefix}_relation.png'
    csv_path = f'{out_prefix}_relation.csv'
    dendro = f'{out_prefix}_dendrogram.png'
    neg = reco_negative_distribution(cos, reco_tau)
    plot_matrix(names, cos, neg, reco_tau, title, png)
    with open(csv_path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['class'] + names)
        for n, row in zip(names, cos):
            w.writerow([n] + [f'{v:.6f}' for v in row])
    rgb = palette_colors(meta.get('palette'), len(classes))
    colors = {c: tuple(rgb[i]) for i, c in enumerate(classes)}
    order = plot_dendrogram(names, Z, colors, title, dendro)
    off = cos[~np.eye(len(names), dtype=bool)]
    print(f'{len(names)} classes; mean off-diagonal cosine {off.mean():.4f}'
          f' (max {off.max():.4f}); dendrogram leaf order: '
          f'{" ".join(order)}')
    print(f'saved {png}, {csv_path}, {dendro}')
    return dict(names=names, cos=cos, linkage=Z, order=order, png=png,
                kind=res['kind'], negative_distribution=neg,
                csv=csv_path, dendrogram=dendro)
