"""Training curves from mmengine JSON logs, several runs overlaid.

Reads ``vis_data/scalars.json`` (or ``vis_data/<timestamp>.json``): one JSON
object per line, training lines with ``loss``, ``decode.loss_ce``,
``decode.loss_contrast``, ``decode.loss_reco``, ``loss_unsup`` ... and
validation lines with ``mIoU`` etc., all with a ``step``. Plots one panel per
loss key (every key matching ``--keys``, default: any key containing
``loss``) and one per metric (``--metrics``, default ``mIoU``), each run in
its own colour. A run is a JSON file or a work dir (the newest
``vis_data/scalars.json`` under it is used)::

    python tools/analysis/plot_curves.py work_dirs/ce work_dirs/contrast \
        --legend "CE only" "+ contrast" --out docs/figures/curves.png

This tool reads logs only, so it has no ``--cfg-options``. The library is
:mod:`mmseg_contrast.tooling.figures.curves`.
"""
import argparse

from mmseg_contrast.tooling.figures.curves import plot_curves
from mmseg_contrast.tooling.figures.errors import FigureInputError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Plot mmengine training curves')
    p.add_argument('runs', nargs='+',
                   help='JSON log files or work dirs (searched for '
                   'vis_data/scalars.json)')
    p.add_argument('--legend', nargs='+', help='one name per run')
    p.add_argument('--keys', default='loss',
                   help='regex: training scalars to plot (default: any key '
                   'containing "loss")')
    p.add_argument('--metrics', nargs='+', default=['mIoU'],
                   help='validation metrics to plot')
    p.add_argument('--smooth', type=int, default=1,
                   help='moving-average window for losses (points)')
    p.add_argument('--out', default='curves.png', help='output PNG')
    p.add_argument('--title', default=None)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        return plot_curves(args.runs, args.legend, args.keys, args.metrics,
                           args.smooth, args.out, args.title)
    except FigureInputError as e:
        raise SystemExit(str(e)) from None


if __name__ == '__main__':
    main()
