"""Checkpoints in the ContrastiveSeg (openseg.pytorch) layout, for tests.

``tests/data/openseg/<arch>.json`` lists the keys, shapes and dtypes of the
authors' model ``state_dict()`` (recorded once from their public code; no
code of theirs is kept here). :func:`deterministic_tensor` fills each tensor
from a generator seeded by the CRC32 of its key name with a shape-appropriate
scale, so the same weights are rebuilt anywhere; the reference logits in
``tests/data/openseg/reference.npz`` were computed by the authors' model
code with exactly these weights on :func:`reference_image`.

Recipe (``numpy.random.default_rng(crc32(key))``, PCG64, float32):

* ``*.num_batches_tracked``: 0;
* ``*.running_var`` and 1-D ``*.weight`` (BN scale): U(0.5, 1.5);
* other 1-D tensors (``running_mean``, biases): N(0, 0.1^2);
* conv weights: N(0, 1 / fan_in), ``fan_in = prod(shape[1:])``.

The reference input is a BGR uint8 image (the authors' pipeline reads with
cv2 and keeps BGR): ``RandomState(seed).randint(0, 256, (H, W, 3))``.
"""
import io
import json
import os.path as osp
import zlib
from collections import OrderedDict

import numpy as np
import torch

DATA = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'data', 'openseg')
ARCHS = ('hrnet_w48_contrast', 'deeplabv3_r101_d8_contrast')


def load_manifest(arch):
    """``(manifest dict, [(key, shape, dtype), ...])`` for a contrast arch;
    the CE model's keys are those without the ``ce_drop_prefix``."""
    with open(osp.join(DATA, f'{arch}.json')) as f:
        man = json.load(f)
    return man, [(k, tuple(s), d) for k, s, d in man['keys']]


def deterministic_tensor(key, shape, dtype='float32'):
    """The tensor of ``key``: a pure function of its name and shape."""
    if key.endswith('num_batches_tracked'):
        return torch.zeros(shape, dtype=getattr(torch, dtype))
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    leaf = key.rsplit('.', 1)[-1]
    if leaf == 'running_var' or (len(shape) == 1 and leaf == 'weight'):
        a = 0.5 + rng.random(shape, dtype=np.float32)
    else:
        std = 0.1 if len(shape) == 1 else np.sqrt(1. / np.prod(shape[1:]))
        a = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
    return torch.from_numpy(a).to(getattr(torch, dtype))


def openseg_state_dict(arch, ce=False, prefix='module.'):
    """The authors' ``state_dict`` with deterministic weights.

    ``ce=True``: the CE model (``HRNet_W48`` / ``DeepLabV3``), i.e. without
    the projection head. ``prefix='module.'`` as in their DDP saves.
    """
    man, keys = load_manifest(arch)
    drop = man['ce_drop_prefix']
    return OrderedDict(
        (prefix + k, deterministic_tensor(k, s, d)) for k, s, d in keys
        if not (ce and k.startswith(drop)))


def openseg_checkpoint_bytes(arch, ce=False, prefix='module.'):
    """A file in the authors' save format: ``{'config_dict', 'state_dict'}``
    (``config_dict`` as their ``Configer.to_dict()``: plain JSON values plus
    a numpy scalar for the best mIoU)."""
    man, _ = load_manifest(arch)
    config_dict = {
        'dataset': 'cityscapes',
        'network': {
            'backbone': man['openseg_backbone'],
            'model_name': man['model_ce' if ce else 'model_contrast'],
            'multi_grid': [1, 1, 1],
            'bn_type': 'torchsyncbn'
        },
        'data': {'num_classes': 19},
        'max_performance': np.float64(0.5),
    }
    buf = io.BytesIO()
    torch.save({'config_dict': config_dict,
                'state_dict': openseg_state_dict(arch, ce, prefix)}, buf)
    return buf.getvalue()


def reference_image():
    """(H, W, 3) uint8 BGR image the reference logits were computed on."""
    with open(osp.join(DATA, 'reference_input.json')) as f:
        spec = json.load(f)
    rs = np.random.RandomState(spec['seed'])
    return rs.randint(0, 256, (spec['height'], spec['width'], 3)).astype(
        np.uint8)


def reference_outputs():
    with np.load(osp.join(DATA, 'reference.npz')) as z:
        return {k: z[k] for k in z.files}
