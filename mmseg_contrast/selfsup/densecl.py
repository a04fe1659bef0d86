"""mmpretrain's DenseCL with its shape constraints checked up front.

mmpretrain 1.2.0's :class:`mmpretrain.models.DenseCL` (used as is, not
re-implemented) has three constraints that otherwise surface as bare asserts
or tensor-shape crashes in the middle of training:

1. ``queue_len % (batch_size * world_size) == 0``: ``_dequeue_and_enqueue``
   writes the all-gathered keys at ``queue[:, ptr:ptr + B]`` and asserts the
   divisibility; a partial last batch (``drop_last=False``) trips it at the
   end of the first epoch.
2. The dense grid must be the backbone's output grid: the positive pairs are
   matched on the un-pooled backbone features (``S = H/stride``) while the
   neck pools its input to ``num_grid x num_grid`` when ``num_grid`` is set,
   so any ``num_grid`` other than the backbone's output size crashes
   (mmselfsup #713, mmpretrain #1557: "size of tensor a (49) must match
   ... (3136)"). ``num_grid=None`` is always consistent.
3. The backbone must return exactly one feature map with the neck's
   ``in_channels`` channels, and the neck's ``out_channels`` must equal
   ``feat_dim`` (the queue width).

:func:`check_densecl_queue` and :func:`check_densecl_backbone_output` state
these with one clear error each. :class:`CheckedDenseCL` (registered in
mmpretrain's ``MODELS``) runs them in ``__init__`` (static checks) and on every
``loss()`` call (batch divisibility, a Python-int check, no host sync) and
the first one (feature-map shapes, from a forward hook on the backbone, no
extra compute). :class:`~mmseg_contrast.engine.hooks.DenseCLCheckHook` runs
the same checks from the dataloader and one dummy forward *before* training
starts.
"""
import numpy as np
import torch.nn as nn
from mmengine.dist import get_world_size
from mmpretrain.models import DenseCL
from mmpretrain.registry import MODELS

from ..options import check_positive, check_positive_int, check_range

__all__ = [
    'CheckedDenseCL', 'check_densecl_queue', 'check_densecl_backbone_output',
    'check_densecl_static', 'check_densecl_momentum', 'DenseCLConfigError',
    'own_image_in_queue_prob', 'suggest_queue_len'
]


class DenseCLConfigError(ValueError):
    """A DenseCL setting that would crash (or silently misbehave) later."""


def check_densecl_queue(queue_len, batch_size, world_size=1):
    """Raise unless ``queue_len`` is a multiple of the global batch size."""
    global_batch = int(batch_size) * int(world_size)
    if global_batch <= 0:
        raise DenseCLConfigError(f'DenseCL: empty batch (batch_size='
                                 f'{batch_size}, world_size={world_size})')
    if queue_len % global_batch != 0:
        lower = (queue_len // global_batch) * global_batch
        upper = lower + global_batch
        hint = f'{upper}' if lower == 0 else f'{lower} or {upper}'
        raise DenseCLConfigError(
            f'DenseCL: queue_len={queue_len} must be a multiple of the global '
            f'batch size {global_batch} (= {batch_size} images per process x '
            f'{world_size} processes): every step enqueues the all-gathered '
            f'keys as one block. Use queue_len={hint}, or change the batch '
            'size; keep drop_last=True so no smaller last batch occurs.')


def own_image_in_queue_prob(num_images, queue_len, global_batch):
    """Probability that the negative queue holds a key of the query's own
    image (another view of it, from an earlier pass), i.e. a false negative.

    Model: the sampler streams concatenated random permutations of the
    ``N`` images (mmengine's ``InfiniteSampler``; ``DefaultSampler`` epochs
    alike), the queue holds the keys of the ``L`` samples enqueued before
    the current batch of ``B`` (mmpretrain enqueues after the loss). With the
    batch starting at epoch position ``s`` (uniform) a sample at offset ``j``
    of the same epoch met its image last in the previous epoch, which lies
    in the queue for ``max(0, L - s)`` of the ``N`` positions; a sample from
    the next epoch met it in the current epoch, in the queue for
    ``min(L, s)`` positions. Averaged over ``s`` and ``j``::

        P = 1/(N^2 B) * sum_s [a_s max(0, L - s) + (B - a_s) min(L, s)],
        a_s = min(B, N - s)

    (for ``L + B <= N``; ``L >= N`` gives ~1). About ``L^2 / (2 N^2)`` when
    ``B << L``: ImageNet (N 1.28M, L 65536) 0.13 %; 82 images with
    ``L = 64, B = 16``: 38 %, with ``L = 16``: 3.8 % (a simulation of the
    stream gives the same).
    """
    n, q, b = int(num_images), int(queue_len), int(global_batch)
    if n <= 0 or q <= 0 or b <= 0:
        raise DenseCLConfigError(
            f'own_image_in_queue_prob: positive sizes needed, got N={n}, '
            f'queue_len={q}, batch={b}')
    if q + b > n:
        return 1.0
    start = np.arange(n, dtype=np.float64)
    same = np.minimum(b, n - start)
    total = same * np.maximum(0., q - start) + (b - same) * np.minimum(
        q, start)
    return float(total.sum() / (n * n * b))


def suggest_queue_len(num_images, global_batch, max_prob):
    """The largest multiple of the global batch whose
    :func:`own_image_in_queue_prob` is at most ``max_prob`` (``None`` if
    even one batch is too many)."""
    lo, hi = 0, (int(num_images) - global_batch) // global_batch
    while lo < hi:  # P grows with the queue: bisect the multiplier
        mid = (lo + hi + 1) // 2
        p = own_image_in_queue_prob(num_images, mid * global_batch,
                                    global_batch)
        lo, hi = (mid, hi) if p <= max_prob else (lo, mid - 1)
    return lo * global_batch if lo > 0 else None


def _neck_grid(neck):
    if getattr(neck, 'with_pool', False):
        size = neck.pool.output_size
        return tuple(size) if isinstance(size, (tuple, list)) else (size,
                                                                    size)
    return None


def _neck_in_out(neck):
    mlp = getattr(neck, 'mlp', None)
    if isinstance(mlp, nn.Sequential) and isinstance(mlp[0], nn.Linear):
        return mlp[0].in_features, mlp[-1].out_features
    return None, None


def _option(check, model, name, value, *args, **kwargs):
    """A :mod:`mmseg_contrast.options` check whose error is a
    :class:`DenseCLConfigError` naming ``model``'s class."""
    try:
        return check(type(model).__name__, name, value, *args, **kwargs)
    except ValueError as e:  # OptionTypeError included
        raise DenseCLConfigError(str(e)) from None


def check_densecl_momentum(owner, m):
    """``m`` must be in (0, 0.5] (mmengine's EMA convention); called before
    mmengine's EMA asserts ``0 < m < 1`` without naming the option."""
    if isinstance(m, (int, float)) and 0.5 < m <= 1:
        raise DenseCLConfigError(
            f'DenseCL: momentum={m} uses the MoCo convention; mmpretrain '
            'uses mmengine\'s EMA convention avg = (1 - m) * avg + m * '
            'src, so MoCo\'s 0.999 is momentum=0.001 here (must be in '
            '(0, 0.5])')
    try:
        check_range(owner, 'momentum', m, 0, 0.5, low_open=True,
                    hint="mmengine's EMA convention: MoCo's 0.999 is 0.001 "
                    'here')
    except ValueError as e:
        raise DenseCLConfigError(str(e)) from None


def check_densecl_static(model):
    """``__init__``-time checks on a built DenseCL model: ``queue_len`` a
    positive int, ``loss_lambda`` in [0, 1] (0: global term only, 1: dense
    term only), ``momentum`` in (0, 0.5] (mmengine's EMA convention), the
    head's ``temperature`` finite and > 0, and the neck / backbone shapes
    (see the module docstring)."""
    _option(check_positive_int, model, 'queue_len', model.queue_len,
            hint='queue_len must be a positive int: the keys per queue')
    _option(check_range, model, 'loss_lambda', model.loss_lambda, 0, 1,
            hint='the weight of the dense term: 0 = global term only, '
            '1 = dense term only')
    temperature = getattr(model.head, 'temperature', None)
    if temperature is not None:
        _option(check_positive, model, 'head.temperature', temperature)
    feat_dim = model.queue.shape[0]
    _, out_ch = _neck_in_out(model.neck)
    if out_ch is not None and out_ch != feat_dim:
        raise DenseCLConfigError(
            f'DenseCL: neck.out_channels={out_ch} must equal feat_dim='
            f'{feat_dim} (the width of the key queues)')
    out_indices = getattr(model.backbone, 'out_indices', None)
    if out_indices is not None and len(tuple(out_indices)) != 1:
        raise DenseCLConfigError(
            f'DenseCL: the backbone must return exactly one feature map '
            f'(the last stage), got out_indices={tuple(out_indices)}; '
            'set e.g. out_indices=(3, ) for ResNet')
    check_densecl_momentum(type(model).__name__, model.encoder_k.momentum)


def check_densecl_backbone_output(feats, neck):
    """Check the backbone's output against the DenseCL neck.

    Args:
        feats (tuple[Tensor] | Tensor): the backbone output.
        neck: the DenseCL neck (``DenseCLNeck``).
    """
    if not isinstance(feats, (tuple, list)):
        raise DenseCLConfigError(
            f'DenseCL: the backbone returned a {type(feats).__name__}, not a '
            'tuple with one feature map (the DenseCL neck indexes x[0]); '
            'some backbones, e.g. mmseg\'s MobileNetV2 with a single '
            'out_index, return a bare tensor: use the mmpretrain backbone of '
            'the same name (identical weights layout) or SegMobileNetV2 '
            '(mmseg\'s MobileNetV2 with strides/dilations, tuple output).')
    if len(feats) != 1:
        raise DenseCLConfigError(
            f'DenseCL: the backbone must return exactly one feature map, got '
            f'{len(feats)} (set the backbone\'s out_indices to its last '
            'stage only)')
    x = feats[0]
    if x.dim() != 4:
        raise DenseCLConfigError(
            f'DenseCL: the backbone output must be N x C x H x W, got '
            f'shape {tuple(x.shape)}')
    in_ch, _ = _neck_in_out(neck)
    if in_ch is not None and x.shape[1] != in_ch:
        raise DenseCLConfigError(
            f'DenseCL: the backbone outputs {x.shape[1]} channels but '
            f'neck.in_channels={in_ch}')
    grid = _neck_grid(neck)
    hw = tuple(x.shape[2:])
    if grid is not None and grid != hw:
        raise DenseCLConfigError(
            f'DenseCL: neck num_grid={grid[0]} pools the dense features to '
            f'{grid[0]}x{grid[1]} = {grid[0] * grid[1]} positions but the '
            f'correspondences are matched on the un-pooled backbone output, '
            f'{hw[0]}x{hw[1]} = {hw[0] * hw[1]} positions for this input '
            f'size, which crashes (mmselfsup #713, mmpretrain #1557). Use '
            f'num_grid=None (the backbone grid, as in the paper\'s code) or '
            f'an input size giving a {grid[0]}x{grid[1]} backbone output.')
    if hw[0] * hw[1] < 2:
        raise DenseCLConfigError(
            f'DenseCL: the backbone output is {hw[0]}x{hw[1]} for this '
            'input size: dense contrast needs a grid of at least 2 '
            'positions; use larger crops or a backbone with a smaller '
            'output stride')


@MODELS.register_module()
class CheckedDenseCL(DenseCL):
    """:class:`mmpretrain.models.DenseCL` plus clear up-front errors.

    Same arguments, loss and checkpoint layout as ``DenseCL`` (the loss is
    mmpretrain's: ``L = (1 - lambda) * L_single + lambda * L_dense``, both
    InfoNCE with temperature ``head.temperature`` against the key queues,
    Wang et al. CVPR'21 eq. 1-3; dense positives = argmax cosine similarity
    of query/key backbone features). Adds :func:`check_densecl_static` in
    ``__init__``, :func:`check_densecl_queue` on every ``loss()`` and
    :func:`check_densecl_backbone_output` on the first one.
    """

    def __init__(self, *args, **kwargs):
        if 'momentum' in kwargs:  # before mmengine's bare assert
            check_densecl_momentum(type(self).__name__, kwargs['momentum'])
        super().__init__(*args, **kwargs)
        check_densecl_static(self)
        self._shapes_checked = False

    def _check_hook(self, module, args, output):
        check_densecl_backbone_output(output, self.neck)

    def loss(self, inputs, data_samples, **kwargs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            got = type(inputs).__name__
            if isinstance(inputs, (list, tuple)):
                got += f' of length {len(inputs)}'
            raise DenseCLConfigError(
                'DenseCL: expects two augmented views per image (a list of 2 '
                'batches; use MultiView(num_views=2) in the pipeline), got '
                f'{got}')
        if inputs[0].shape != inputs[1].shape:
            raise DenseCLConfigError(
                'DenseCL: the two views must have the same shape, got '
                f'{tuple(inputs[0].shape)} and {tuple(inputs[1].shape)}')
        check_densecl_queue(self.queue_len, inputs[0].shape[0],
                            get_world_size())
        if self._shapes_checked:
            return super().loss(inputs, data_samples, **kwargs)
        handle = self.backbone.register_forward_hook(self._check_hook)
        try:
            losses = super().loss(inputs, data_samples, **kwargs)
        finally:
            handle.remove()
        self._shapes_checked = True
        return losses
