"""t-SNE of per-pixel embeddings: the library behind
``tools/analysis/tsne_embeddings.py`` (its docstring describes the pixel
sampling, the embedding used and the silhouette score)."""
import os
import os.path as osp

import numpy as np

from ..embedding_analysis import (
    build_dataloader,
    collect_embeddings,
    init_segmentor,
    palette_colors,
)
from .errors import FigureInputError

__all__ = [
    'embed_model', 'run_tsne', 'silhouette', 'plot_tsne', 'tsne_figure'
]


def embed_model(config, checkpoint, cfg_options=None, device='cpu',
                split='val', max_images=0, embedding='auto',
                pixels_per_image=40, max_per_class=250, seed=0):
    """Sampled pixel embeddings of one model (see
    :func:`~mmseg_contrast.tooling.embedding_analysis.collect_embeddings`),
    with the dataset's ``classes`` and ``palette``."""
    model, cfg = init_segmentor(config, checkpoint, cfg_options, device)
    loader = build_dataloader(cfg, split, max_images)
    meta = getattr(model, 'dataset_meta', None) or \
        loader.dataset.metainfo
    classes = list(meta['classes'])
    res = collect_embeddings(
        model,
        loader,
        len(classes),
        embedding=embedding,
        pixels_per_image=pixels_per_image,
        max_per_class=max_per_class,
        seed=seed)
    res.update(classes=classes, palette=meta.get('palette'))
    return res


def run_tsne(samples, perplexity, seed):
    """2-D t-SNE (cosine metric) of ``samples``; the perplexity is capped
    for small samples."""
    from sklearn.manifold import TSNE
    n = samples.shape[0]
    if n < 5:
        raise ValueError(f'only {n} labelled pixels sampled; need >= 5')
    perp = min(perplexity, (n - 1) / 3.0)
    return TSNE(
        n_components=2,
        perplexity=perp,
        metric='cosine',
        init='pca',
        random_state=seed).fit_transform(np.asarray(samples, np.float32))


def silhouette(samples, labels):
    """Cosine silhouette score (NaN with fewer than 2 classes)."""
    from sklearn.metrics import silhouette_score
    if len(np.unique(labels)) < 2:
        return float('nan')
    return float(silhouette_score(samples, labels, metric='cosine'))


def plot_tsne(panels, classes, colors, out):
    """Scatter panels ``[(title, xy, labels)]`` side by side, one legend of
    the classes present."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.0 * len(panels) + 1.8, 5.2), squeeze=False)
    present = set()
    for ax, (title, xy, labels) in zip(axes[0], panels):
        ax.scatter(xy[:, 0], xy[:, 1], c=colors[labels], s=5, alpha=0.8,
                   linewidths=0, rasterized=True)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        present.update(np.unique(labels).tolist())
    handles = [
        Line2D([0], [0], marker='o', ls='', color=colors[c], label=classes[c])
        for c in sorted(present)
    ]
    fig.legend(handles=handles, loc='center right', fontsize=8, frameon=False,
               borderaxespad=0.2)
    fig.tight_layout(rect=(0, 0, 1 - 1.7 / fig.get_size_inches()[0], 1))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def tsne_figure(runs, out='tsne.png', titles=None, split='val',
                embedding='auto', pixels_per_image=40, max_per_class=250,
                max_images=0, perplexity=30.0, seed=0, device='cpu',
                cfg_options=None):
    """t-SNE panels of the models ``runs`` (``[(config, checkpoint)]``,
    drawn side by side, ``cfg_options`` applied to each) in ``out``; prints
    one line per model.

    Returns:
        list[tuple]: ``(title, embedding kind, pixels, classes,
        silhouette)`` per model.
    """
    runs = [tuple(r) for r in runs]
    titles = titles or [
        osp.splitext(osp.basename(c))[0] for c, _ in runs
    ]
    if len(titles) != len(runs):
        raise FigureInputError(f'--titles needs {len(runs)} names, got '
                               f'{len(titles)}')
    results = [
        embed_model(c, k, cfg_options, device, split, max_images, embedding,
                    pixels_per_image, max_per_class, seed) for c, k in runs
    ]
    classes = results[0]['classes']
    for r, (c, _) in zip(results[1:], runs[1:]):
        if r['classes'] != classes:
            raise FigureInputError(f'{c} has different classes than '
                                   f'{runs[0][0]}; cannot compare')
    colors = palette_colors(results[0]['palette'], len(classes))
    panels, summary = [], []
    for title, r in zip(titles, results):
        x = r['samples'].numpy()
        y = r['sample_labels'].numpy()
        score = silhouette(x, y)
        xy = run_tsne(x, perplexity, seed)
        panels.append((f'{title}\n{r["kind"]} embedding, {len(y)} px, '
                       f'silhouette {score:.3f}', xy, y))
        summary.append((title, r['kind'], len(y), int(len(np.unique(y))),
                        score))
    plot_tsne(panels, classes, colors, out)
    for title, kind, n, k, score in summary:
        print(f'{title}: {kind} embedding, {n} pixels of {k} classes, '
              f'silhouette(cosine) = {score:.4f}')
    print(f'saved {out}')
    return summary
