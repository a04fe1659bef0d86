"""t-SNE of per-pixel embeddings on the validation set.

Samples up to ``--pixels-per-image`` labelled pixels per class per image
(at the decode head's feature resolution) and at most ``--max-per-class``
per class overall, embeds them with scikit-learn's t-SNE (cosine metric on
L2-normalised embeddings) and saves a scatter plot coloured with the
dataset palette, with the class names in the legend. The embedding is the
projection-head output if the head has one (ContrastiveSeg ``proj_head``,
ReCo ``reco_proj``), else the pre-classifier feature (input of
``conv_seg``). The silhouette score (cosine) of the sampled embeddings is
printed and written in the title as a number to compare models.

Give two checkpoints for a side-by-side figure (e.g. CE-only vs contrast)::

    python tools/analysis/tsne_embeddings.py \
        configs/baseline/deeplabv3_mnv2_aal_cpu.py work_dirs/ce/iter_1000.pth \
        --compare configs/pixel_contrast/X.py work_dirs/con/iter_1000.pth \
        --titles "CE only" "+ pixel contrast" --out docs/figures/tsne.png
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mmseg_contrast  # noqa: E402,F401  (compat layer + registration)

from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='t-SNE of pixel embeddings')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file or http(s) URL')
    p.add_argument(
        '--compare',
        nargs=2,
        metavar=('CONFIG2', 'CHECKPOINT2'),
        help='second model, drawn side by side (e.g. CE-only vs contrast)')
    p.add_argument(
        '--titles', nargs='+', help='panel titles (default: config stems)')
    p.add_argument('--out', default='tsne.png', help='output PNG')
    p.add_argument(
        '--split', default='val', choices=['val', 'test', 'train'],
        help='which dataloader of the config to sample from')
    p.add_argument(
        '--embedding', default='auto', choices=['auto', 'proj', 'feature'],
        help='projection-head embedding, pre-classifier feature, or proj '
        'when the head has one')
    p.add_argument('--pixels-per-image', type=int, default=40)
    p.add_argument('--max-per-class', type=int, default=250)
    p.add_argument('--max-images', type=int, default=0,
                   help='use only the first N images (0 = all)')
    p.add_argument('--perplexity', type=float, default=30.0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cpu')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of both configs, key=value (e.g. '
        'model.test_cfg.mode=whole)')
    return p.parse_args(argv)


def embed_model(config, checkpoint, args):
    from mmseg_contrast.tooling.embedding_analysis import (build_dataloader,
                                                         collect_embeddings,
                                                         init_segmentor)
    model, cfg = init_segmentor(config, checkpoint, args.cfg_options,
                                args.device)
    loader = build_dataloader(cfg, args.split, args.max_images)
    meta = getattr(model, 'dataset_meta', None) or \
        loader.dataset.metainfo
    classes = list(meta['classes'])
    res = collect_embeddings(
        model,
        loader,
        len(classes),
        embedding=args.embedding,
        pixels_per_image=args.pixels_per_image,
        max_per_class=args.max_per_class,
        seed=args.seed)
    res.update(classes=classes, palette=meta.get('palette'))
    return res


def run_tsne(samples, perplexity, seed):
    import numpy as np
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
    import numpy as np
    from sklearn.metrics import silhouette_score
    if len(np.unique(labels)) < 2:
        return float('nan')
    return float(silhouette_score(samples, labels, metric='cosine'))


def plot(panels, classes, colors, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    import numpy as np
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


def main(argv=None):
    import numpy as np

    from mmseg_contrast.tooling.embedding_analysis import palette_colors
    args = parse_args(argv)
    runs = [(args.config, args.checkpoint)]
    if args.compare:
        runs.append(tuple(args.compare))
    titles = args.titles or [
        osp.splitext(osp.basename(c))[0] for c, _ in runs
    ]
    if len(titles) != len(runs):
        raise SystemExit(f'--titles needs {len(runs)} names, got '
                         f'{len(titles)}')
    results = [embed_model(c, k, args) for c, k in runs]
    classes = results[0]['classes']
    for r, (c, _) in zip(results[1:], runs[1:]):
        if r['classes'] != classes:
            raise SystemExit(f'{c} has different classes than '
                             f'{runs[0][0]}; cannot compare')
    colors = palette_colors(results[0]['palette'], len(classes))
    panels, summary = [], []
    for title, r in zip(titles, results):
        x = r['samples'].numpy()
        y = r['sample_labels'].numpy()
        score = silhouette(x, y)
        xy = run_tsne(x, args.perplexity, args.seed)
        panels.append((f'{title}\n{r["kind"]} embedding, {len(y)} px, '
                       f'silhouette {score:.3f}', xy, y))
        summary.append((title, r['kind'], len(y), int(len(np.unique(y))),
                        score))
    plot(panels, classes, colors, args.out)
    for title, kind, n, k, score in summary:
        print(f'{title}: {kind} embedding, {n} pixels of {k} classes, '
              f'silhouette(cosine) = {score:.4f}')
    print(f'saved {args.out}')
    return summary


if __name__ == '__main__':
    main()
