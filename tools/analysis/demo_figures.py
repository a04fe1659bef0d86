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
"""
import argparse
import glob
import os
import os.path as osp
import shutil
import sys

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(TOOLS))
sys.path.insert(0, osp.join(TOOLS, 'analysis'))
import mmseg_contrast  # noqa: E402,F401

import class_relation  # noqa: E402
import plot_curves  # noqa: E402
import tsne_embeddings  # noqa: E402


def run_files(work_dir):
    """(config dump, last checkpoint) of a training work dir."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        ckpt = open(marker).read().strip()
        if not osp.isfile(ckpt):  # written with another absolute root
            ckpt = osp.join(work_dir, osp.basename(ckpt))
    else:
        cands = sorted(glob.glob(osp.join(work_dir, 'iter_*.pth')),
                       key=osp.getmtime)
        if not cands:
            raise FileNotFoundError(f'no checkpoint in {work_dir}')
        ckpt = cands[-1]
    cfgs = [c for c in glob.glob(osp.join(work_dir, '*.py'))]
    if len(cfgs) != 1:
        raise FileNotFoundError(f'expected one config dump in {work_dir}, '
                                f'found {len(cfgs)}')
    return cfgs[0], ckpt


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
    p.add_argument('--cfg-options', nargs='+', default=[])
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    (ce_cfg, ce_ckpt), (co_cfg, co_ckpt) = map(
        run_files, (args.ce_dir, args.contrast_dir))
    opts = ['--cfg-options'] + args.cfg_options if args.cfg_options else []
    mi = ['--max-images', str(args.max_images), '--embedding', args.embedding]
    tsne_embeddings.main([
        ce_cfg, ce_ckpt, '--compare', co_cfg, co_ckpt, '--titles',
        *args.names, '--out',
        osp.join(args.out_dir, 'tsne_ce_vs_contrast.png')
    ] + mi + opts)
    for tag, cfg, ckpt, name in (('ce', ce_cfg, ce_ckpt, args.names[0]),
                                 ('contrast', co_cfg, co_ckpt,
                                  args.names[1])):
        prefix = osp.join(args.out_dir, tag)
        class_relation.main([cfg, ckpt, '--out-prefix', prefix, '--title',
                             name] + mi + opts)
        shutil.move(f'{prefix}_relation.png',
                    osp.join(args.out_dir, f'relation_{tag}.png'))
        shutil.move(f'{prefix}_relation.csv',
                    osp.join(args.out_dir, f'relation_{tag}.csv'))
        shutil.move(f'{prefix}_dendrogram.png',
                    osp.join(args.out_dir, f'dendrogram_{tag}.png'))
    plot_curves.main([args.ce_dir, args.contrast_dir, '--legend',
                      *args.names, '--smooth', '3', '--out',
                      osp.join(args.out_dir, 'curves.png')])


if __name__ == '__main__':
    main()
