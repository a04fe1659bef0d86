"""All analysis figures of a CE-only run vs a contrastive run, in one go
(``tools/analysis/demo_figures.py``): t-SNE side by side, class relation
and dendrogram of each run, and the training curves of both."""
import glob
import os
import os.path as osp
import shutil

from .curves import plot_curves
from .relation import relation_figures
from .tsne import tsne_figure

__all__ = ['run_files', 'demo_figures']


def run_files(work_dir):
    """(config dump, last checkpoint) of a training work dir."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            ckpt = f.read().strip()
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


def demo_figures(ce_dir, contrast_dir, names=('CE only', '+ contrast'),
                 out_dir='docs/figures', max_images=0, embedding='feature',
                 cfg_options=None):
    """Write ``tsne_ce_vs_contrast.png``, ``relation_<tag>.png/.csv``,
    ``dendrogram_<tag>.png`` (tags ``ce`` and ``contrast``) and
    ``curves.png`` into ``out_dir`` from two training work dirs (config
    dump, ``last_checkpoint``, ``*/vis_data``), printing what each figure
    reports. ``cfg_options`` apply to both models."""
    os.makedirs(out_dir, exist_ok=True)
    (ce_cfg, ce_ckpt), (co_cfg, co_ckpt) = map(run_files,
                                               (ce_dir, contrast_dir))
    tsne_figure([(ce_cfg, ce_ckpt), (co_cfg, co_ckpt)],
                osp.join(out_dir, 'tsne_ce_vs_contrast.png'), list(names),
                embedding=embedding, max_images=max_images,
                cfg_options=cfg_options)
    for tag, cfg, ckpt, name in (('ce', ce_cfg, ce_ckpt, names[0]),
                                 ('contrast', co_cfg, co_ckpt, names[1])):
        prefix = osp.join(out_dir, tag)
        relation_figures(cfg, ckpt, out_prefix=prefix, title=name,
                         embedding=embedding, max_images=max_images,
                         cfg_options=cfg_options)
        shutil.move(f'{prefix}_relation.png',
                    osp.join(out_dir, f'relation_{tag}.png'))
        shutil.move(f'{prefix}_relation.csv',
                    osp.join(out_dir, f'relation_{tag}.csv'))
        shutil.move(f'{prefix}_dendrogram.png',
                    osp.join(out_dir, f'dendrogram_{tag}.png'))
    plot_curves([ce_dir, contrast_dir], list(names), smooth_window=3,
                out=osp.join(out_dir, 'curves.png'))
