"""Convert a DenseCL checkpoint into an mmseg backbone checkpoint.

Accepts the official DenseCL release (backbone only, no prefix), mmselfsup 0.x
/ OpenSelfSup full checkpoints (``encoder_q.0.*``, ``encoder_k.*``,
``backbone.*``, queues) and mmpretrain / mmselfsup 1.x checkpoints
(``backbone.*``, ``neck.*``, ``encoder_k.module.*``, queues). The output holds
``{'state_dict': {<backbone keys, no prefix>}, 'meta': {...}}`` and is loaded
in mmseg with ``backbone.init_cfg=dict(type='Pretrained', checkpoint=OUT)``
(no ``prefix``) and ``model.pretrained=None``.

The keys are checked against a target mmseg backbone, taken from a config
(``--config``, its ``model.backbone``) or from ``--backbone-type``/
``--depth``. A conversion that would leave target weights random (e.g. a plain
ResNet stem into ``ResNetV1c``'s deep stem) is refused unless
``--allow-partial`` is given.

Examples::

    python tools/model_converters/densecl2mmseg.py \\
        densecl_r50_imagenet_200ep.pth densecl_r50_in1k_mmseg.pth \\
        --backbone-type ResNet --depth 50
    python tools/model_converters/densecl2mmseg.py \\
        work_dirs/densecl/epoch_200.pth r50_mmseg.pth \\
        --config configs/densecl/\\
fcn_r50-d8_densecl-in1k-pre_4xb4-20k_voc12aug-512x512.py
"""
import argparse
import sys

import mmseg_contrast  # noqa: F401
from mmseg_contrast.converters.densecl import (
    PartialLoadError,
    convert_densecl_checkpoint,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert a DenseCL checkpoint into an mmseg backbone '
        'checkpoint, refusing silent partial loads.')
    parser.add_argument('src', help='DenseCL checkpoint (any format)')
    parser.add_argument('dst', help='output mmseg backbone checkpoint')
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        '--config',
        help='mmseg config whose model.backbone is the target backbone')
    target.add_argument(
        '--backbone-type',
        help='target mmseg backbone type, e.g. ResNet (V1b, 7x7 stem: what '
        'DenseCL trains), ResNetV1c, MobileNetV2')
    target.add_argument(
        '--no-check',
        action='store_true',
        help='skip the comparison with a target backbone (not recommended)')
    parser.add_argument(
        '--depth', type=int, help='ResNet depth for --backbone-type')
    parser.add_argument(
        '--encoder',
        choices=['query', 'key'],
        default='query',
        help='take the query (default) or the momentum (key) backbone')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='write the loadable subset even if keys are missing, '
        'unexpected or of the wrong shape')
    parser.add_argument(
        '--ignore-unexpected',
        nargs='+',
        default=[],
        metavar='GLOB',
        help='checkpoint keys known to have no counterpart in the target '
        '(e.g. "conv2.*" for mmpretrain MobileNetV2, "fc.*"); dropped '
        'without refusing')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.config:
        backbone_cfg = args.config
    elif args.backbone_type:
        backbone_cfg = dict(type=args.backbone_type)
        if args.depth is not None:
            backbone_cfg['depth'] = args.depth
    else:
        backbone_cfg = None
    try:
        out, report = convert_densecl_checkpoint(
            args.src,
            args.dst,
            backbone_cfg=backbone_cfg,
            encoder=args.encoder,
            allow_partial=args.allow_partial,
            ignore_unexpected=args.ignore_unexpected)
    except PartialLoadError as e:
        print(f'ERROR: {e}', file=sys.stderr)
        return 1
    print(report.summary())
    if backbone_cfg is None:
        print('WARNING: not checked against a target backbone (--no-check)')
    elif not report.is_complete:
        print('WARNING: partial conversion written (--allow-partial)')
    print(f"saved {len(out['state_dict'])} tensors to {args.dst}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
