"""Convert a ContrastiveSeg (openseg.pytorch) checkpoint into an mmseg one.

The authors' released Cityscapes checkpoints (HRNet-W48 and DeepLabV3 on the
deep-stem ResNet-101, each CE-only and with pixel contrast) are recognised
from their keys; every tensor is mapped or the conversion is refused (see
``mmseg_contrast/converters/openseg.py``). The source is read with the
project's safe loader. By default the result is loaded strictly into the
matching config's model before it is written (``--no-verify`` skips that).

Examples::

    python tools/model_converters/contrastiveseg2mmseg.py \\
        hrnet_w48_contrast_lr1x_hrnet_contrast_t0.1_max_performance.pth \\
        checkpoints/hrnet_w48_contrast_openseg_mmseg.pth
    python tools/test.py \\
        configs/pixel_contrast/\\
fcn_hr48_openseg-contrast_4xb2-40k_cityscapes-512x1024.py \\
        checkpoints/hrnet_w48_contrast_openseg_mmseg.pth

``tools/test.py CONFIG <authors' URL>`` does the same conversion by itself
(and caches it).
"""
import argparse
import os.path as osp
import sys

import mmseg_contrast  # noqa: F401
from mmseg_contrast.checkpoint import (
    UnsafeCheckpointError,
    atomic_torch_save,
    load_checkpoint_file,
)
from mmseg_contrast.converters.openseg import (
    OpenSegLayoutError,
    convert_openseg_checkpoint,
    summary,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Convert a ContrastiveSeg / openseg.pytorch checkpoint '
        '(HRNet-W48 or DeepLabV3-R101-D8, with or without projection head) '
        'into an mmseg checkpoint.')
    p.add_argument('src', help="the authors' checkpoint")
    p.add_argument('dst', help='output mmseg checkpoint')
    p.add_argument(
        '--config',
        help='config to verify against (default: the matching '
        'configs/pixel_contrast/*openseg* config)')
    p.add_argument(
        '--no-verify',
        action='store_true',
        help='do not load the result strictly into the config model')
    return p.parse_args(argv)


def verify(out, config):
    """Load ``out`` strictly into ``config``'s model (raises on mismatch)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(config)
    cfg.model.pop('pretrained', None)
    cfg.model.backbone.pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    model.load_state_dict(out['state_dict'], strict=True)


def main(argv=None):
    args = parse_args(argv)
    try:
        ckpt = load_checkpoint_file(args.src, map_location='cpu')
        out = convert_openseg_checkpoint(ckpt)
    except (OpenSegLayoutError, UnsafeCheckpointError) as e:
        print(f'ERROR: {args.src}: {e}', file=sys.stderr)
        return 1
    meta = out['meta']['openseg']
    meta['source'] = osp.basename(args.src)
    if not args.no_verify:
        config = args.config or osp.join(ROOT, meta['config'])
        try:
            verify(out, config)
        except RuntimeError as e:
            print(f'ERROR: the conversion does not load strictly into '
                  f'{config}: {e}', file=sys.stderr)
            return 1
        print(f'verified: loads strictly into {config}')
    atomic_torch_save(out, args.dst)
    for line in summary(meta):
        print(line)
    print(f"saved {len(out['state_dict'])} tensors to {args.dst}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
