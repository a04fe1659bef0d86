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

The library is :mod:`mmseg_contrast.tooling.figures.tsne`.
"""
import argparse

from mmengine.config import DictAction

from mmseg_contrast.tooling.figures.errors import FigureInputError
from mmseg_contrast.tooling.figures.tsne import tsne_figure


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


def main(argv=None):
    args = parse_args(argv)
    runs = [(args.config, args.checkpoint)]
    if args.compare:
        runs.append(tuple(args.compare))
    try:
        return tsne_figure(
            runs, args.out, args.titles, split=args.split,
            embedding=args.embedding,
            pixels_per_image=args.pixels_per_image,
            max_per_class=args.max_per_class, max_images=args.max_images,
            perplexity=args.perplexity, seed=args.seed, device=args.device,
            cfg_options=args.cfg_options)
    except FigureInputError as e:
        raise SystemExit(str(e)) from None


if __name__ == '__main__':
    main()
