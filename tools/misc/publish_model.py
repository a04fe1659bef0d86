"""Make a release checkpoint: strip training-only state, name it by hash.

    python tools/misc/publish_model.py work_dirs/X/iter_1000.pth \
        work_dirs/publish/X [--strip-proj] [--semi-branch teacher|student] \
        [--config configs/X.py [--cfg-options k=v ...]]

writes ``work_dirs/publish/X_<YYYYMMDD>-<sha256[:8]>.pth`` without
optimizer / param_schedulers / message_hub / EMA resume copy, memory-bank
buffers (``*memory*``, ``*queue*``, ``*_ptr``), the unused branch of a
mean-teacher checkpoint (``--semi-branch``) and, with ``--strip-proj``, the
projection head; ``meta`` keeps ``dataset_meta``. With ``--config`` the
published weights are loaded into the config's model first, so a checkpoint
that does not match the config (e.g. another number of classes) is refused
with a one-line error. The output stem defaults to the config stem when
``--config`` is given.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

import mmseg_contrast  # noqa: F401  (compat layer + registration)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Strip a training checkpoint and name it '
        '<stem>_<YYYYMMDD>-<sha256[:8]>.pth')
    p.add_argument('in_file', help='training checkpoint')
    p.add_argument(
        'out_file', nargs='?',
        help='output path stem (".pth" optional); default: the config stem '
        'next to in_file')
    p.add_argument('--config', help='check the weights against this config')
    p.add_argument('--strip-proj', action='store_true',
                   help='also drop the projection head (proj_head/reco_proj)')
    p.add_argument('--semi-branch', default='teacher',
                   choices=['teacher', 'student'],
                   help='semi-supervised checkpoint: the branch to publish '
                   '(under plain keys, loads into the supervised config); '
                   'the other one is dropped')
    p.add_argument('--date', help='YYYYMMDD (default: today)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of --config, key=value')
    return p.parse_args(argv)


def main(argv=None):
    from mmseg_contrast.tooling.publish import publish_checkpoint
    args = parse_args(argv)
    out = args.out_file
    if out is None:
        if not args.config:
            raise SystemExit('give out_file or --config (its stem names the '
                             'file)')
        out = osp.join(
            osp.dirname(args.in_file),
            osp.splitext(osp.basename(args.config))[0])
    final, removed = publish_checkpoint(
        args.in_file, out, strip_proj=args.strip_proj,
        semi_branch=args.semi_branch, date=args.date)
    if args.config:
        from mmseg_contrast.tooling.embedding_analysis import init_segmentor
        try:
            init_segmentor(args.config, final, args.cfg_options)
        except Exception:
            import os
            os.remove(final)
            raise
    print('removed: ' + ', '.join(f'{v} {k}' for k, v in removed.items()))
    print(f'published {final}')
    return final


if __name__ == '__main__':
    main()
