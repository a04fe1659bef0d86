"""All analysis figures of a CE-only run vs a contrastive run, in one go.

    python tools/analysis/demo_figures.py WORK_DIR_CE WORK_DIR_CONTRAST \
        [--names "CE only" "+ pixel contrast"] [--out-dir docs/figures]

Each work dir is what ``tools/train.py``/``tools/run_demo.py`` wrote: the
config dump ``<config>.py``, ``last_checkpoint`` and ``*/vis_data``. Writes
``tsne_ce_vs_contrast.png``, ``relation_<tag>.png/.csv``,
``dendrogram_<tag>.png`` for both runs and ``curves.png`` (tags ``ce`` and
``contrast``), and prints the numbers each tool reports. By default both
models are compared on the pre-classifier feature (``--embedding feature``),
the embedding both have.

The library is :mod:`mmseg_contrast.tooling.figures.demo`.
"""
import argparse

from mmengine.config import DictAction

from mmseg_contrast.tooling.figures.demo import demo_figures
from mmseg_contrast.tooling.figures.errors import FigureInputError


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('ce_dir')
    p.add_argument('contrast_dir')
    p.add_argument('--names', nargs=2, default=['CE only', '+ contrast'])
    p.add_argument('--out-dir', default='docs/figures')
    p.add_argument('--max-images', type=int, default=0)
    p.add_argument(
        '--embedding', default='feature', choices=['feature', 'proj', 'auto'],
        help='compare like with like: the pre-classifier feature exists in '
        'both models (default); proj/auto use a projection head if any')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    try:
        demo_figures(args.ce_dir, args.contrast_dir, args.names, args.out_dir,
                     args.max_images, args.embedding, args.cfg_options)
    except FigureInputError as e:
        raise SystemExit(str(e)) from None


if __name__ == '__main__':
    main()
