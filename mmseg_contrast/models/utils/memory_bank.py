"""Class-wise pixel / segment memory bank for cross-image pixel contrast.

ContrastiveSeg (Wang et al., ICCV'21, ``tfzhou/ContrastiveSeg``
``lib/models/nets/hrnet.py:153-171`` and ``segmentor/trainer_contrastive.py``
``_dequeue_and_enqueue`` l.102-138) keeps two queues per class:

* ``segment_queue (C, M, D)``: one entry per (image, class) occurrence, the
  L2-normalised mean of the class's (normalised) pixel embeddings;
* ``pixel_queue (C, M, D)``: ``pixel_per_image`` random pixel embeddings of
  that class per (image, class) occurrence (the paper's V = 10).

Both are ring buffers; a class pointer advances by the number of entries
written. What differs from the reference (deliberately, see
``pixel_contrast.md`` §2.3-2.5):

* class 0 is a real class and is enqueued (the reference skips it);
* the pixel entries are pixels *of that class* (``idx[perm]``; the reference
  takes flat positions ``perm`` of the whole image);
* the pixel pointer advances by the number written (``+= K``, not ``+= 1``),
  and a write that crosses the end wraps around instead of overwriting the
  newest slots;
* labels must be at (or are nearest-resized to) the key resolution (the
  reference slices with the config stride 8 on a stride-4 map);
* each rank samples its own images (the pixel choice uses a generator
  seeded from ``(seed, number of updates, rank)``), then only what is written
  -- the segment means and sampled pixels, with their classes -- is
  all-gathered (``mmengine.dist.all_gather``, padded to the largest count),
  and every rank writes all ranks' rows in rank order, so all ranks hold the
  identical bank (the reference keeps only rank 0's enqueues through DDP
  buffer broadcast). For the HRNet Cityscapes config that is at most
  2 x 19 x (10 + 1) rows of 257 floats (0.41 MiB) per rank and step instead
  of the (2, 256, 128, 256) key map (64 MiB,
  ``tools/analysis/benchmark_bank_traffic.py``); the bank's buffers should
  be excluded from DDP buffer broadcast, see :func:`ddp_ignore_memory_banks`;
* pixels whose key cannot be normalised (a NaN / inf value, e.g. an fp16
  overflow; a norm that overflows fp32 or is 0) are never enqueued (they
  count in :attr:`PixelMemoryBank.last_nonfinite`), nor is the segment
  mean of a class whose keys sum to 0, so one bad step cannot poison the
  bank with NaN or zero vectors;
* the queues start empty (zeros) and ``pixel_count`` / ``segment_count``
  track how many slots of each class are filled, so the loss ignores
  unfilled slots (the reference starts from random unit vectors that act as
  real keys until overwritten).

The enqueue is fully vectorised: segment means by one ``scatter_add_`` over
the key map, pixel picks by a random-key sort and rank within (image, class)
groups, and ring-buffer writes by one ``index_copy_`` per queue (rows that
write nothing rewrite a slot with its own current value). On one process it
is free of host synchronisation; across ranks it reads the gathered row
counts once (one ``.tolist()``, to size the padded all-gather). The
normalisation and the segment sums over pixels are accumulated in fp32 with
autocast off whatever the dtype of the keys and of the queues (an fp16 sum
of a class's unit keys stalls once it reaches ~2048); the rows are written
in the queues' dtype.
"""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_gather, get_rank, get_world_size
from mmseg.registry import MODELS
from torch import Tensor

from .bank_ops import resize_labels_nearest, write_ring_rows
from .device_utils import fp32_region
from .option_checks import check_bank_options

__all__ = ['PixelMemoryBank', 'ddp_ignore_memory_banks']

_NORM_EPS = 1e-12  # F.normalize's: keys with a smaller norm are dropped
_BANK_BUFFERS = ('pixel_queue', 'segment_queue', 'pixel_ptr', 'segment_ptr',
                 'pixel_count', 'segment_count', 'num_updates')


@MODELS.register_module()
class PixelMemoryBank(nn.Module):
    """Per-class ring buffers of segment and pixel embeddings.

    Args (checked when built, :mod:`mmseg_contrast.options`):
        num_classes (int): C, >= 1.
        feat_dim (int): D, the embedding size, >= 1. Default 256.
        memory_size (int): M, slots per class and per queue; an int
            greater than ``pixel_per_image`` (one enqueue writes up to
            ranks x images x ``pixel_per_image`` pixels per class, which
            must stay below M). Default 5000.
        pixel_per_image (int): pixels enqueued per (image, class), >= 1.
            Default 10.
        ignore_index (int): label never enqueued. Default 255.
        gather (bool): all-gather the rows every rank writes (segment means
            and sampled pixels with their classes), so that all ranks hold
            the same bank (no-op when not distributed). Default True.
        seed (int): base seed of the pixel-choice generator (any int).
            Default 0.

    Buffers (saved in checkpoints, so ``--resume`` restores the bank):
        ``pixel_queue``/``segment_queue`` (C, M, D) float32,
        ``pixel_ptr``/``segment_ptr`` (C,) long: next slot to write,
        ``pixel_count``/``segment_count`` (C,) long: filled slots (<= M),
        ``num_updates`` () long: number of ``enqueue`` calls.
    """

    def __init__(self,
                 num_classes: int,
                 feat_dim: int = 256,
                 memory_size: int = 5000,
                 pixel_per_image: int = 10,
                 ignore_index: int = 255,
                 gather: bool = True,
                 seed: int = 0):
        super().__init__()
        check_bank_options(type(self).__name__, num_classes, feat_dim,
                           memory_size, pixel_per_image, ignore_index,
                           gather, seed)
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.memory_size = memory_size
        self.pixel_per_image = pixel_per_image
        self.ignore_index = ignore_index
        self.gather = gather
        self.seed = int(seed)
        C, M, D = num_classes, memory_size, feat_dim
        self.register_buffer('pixel_queue', torch.zeros(C, M, D))
        self.register_buffer('segment_queue', torch.zeros(C, M, D))
        self.register_buffer('pixel_ptr', torch.zeros(C, dtype=torch.long))
        self.register_buffer('segment_ptr', torch.zeros(C, dtype=torch.long))
        self.register_buffer('pixel_count', torch.zeros(C, dtype=torch.long))
        self.register_buffer('segment_count',
                             torch.zeros(C, dtype=torch.long))
        self.register_buffer('num_updates', torch.zeros((), dtype=torch.long))
        # host mirror of ``num_updates`` (kept in sync on load) so seeding the
        # generator needs no device->host copy
        self._host_updates = 0
        #: pixels of the last ``enqueue`` dropped (key NaN, inf or norm 0; 0-d
        #: long tensor, all ranks), None before the first call
        self.last_nonfinite: Optional[Tensor] = None

    # ------------------------------------------------------------------ state
    @staticmethod
    def buffer_names() -> List[str]:
        """Names of the bank's buffers (relative to the bank module)."""
        return list(_BANK_BUFFERS)

    @property
    def pixel_filled(self) -> Tensor:
        """(C, M) bool: slots of ``pixel_queue`` that hold an entry."""
        ar = torch.arange(self.memory_size, device=self.pixel_count.device)
        return ar[None] < self.pixel_count[:, None]

    @property
    def segment_filled(self) -> Tensor:
        """(C, M) bool: slots of ``segment_queue`` that hold an entry."""
        ar = torch.arange(self.memory_size, device=self.segment_count.device)
        return ar[None] < self.segment_count[:, None]

    def queues(self):
        """``[(queue (C, M, D), filled (C, M) bool), ...]`` for the loss:
        segment queue first, then pixel queue (the reference's cat order)."""
        return [(self.segment_queue, self.segment_filled),
                (self.pixel_queue, self.pixel_filled)]

    def reset(self) -> None:
        for name in _BANK_BUFFERS:
            getattr(self, name).zero_()
        self._host_updates = 0

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        key = prefix + 'num_updates'
        if key in state_dict:
            self._host_updates = int(state_dict[key])

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, feat_dim={self.feat_dim}, '
                f'memory_size={self.memory_size}, '
                f'pixel_per_image={self.pixel_per_image}, '
                f'ignore_index={self.ignore_index}')

    def _generator(self, device: torch.device) -> torch.Generator:
        # depends only on the seed, the number of updates so far (a
        # checkpointed buffer, so a resumed run draws what the uninterrupted
        # one drew) and the rank, which samples its own images; a fresh
        # generator each call, so the module stays deep-copyable
        gen = torch.Generator(device=device)
        rank = get_rank() if get_world_size() > 1 else 0
        gen.manual_seed(self.seed * 1_000_003 + self._host_updates +
                        (rank << 40))
        return gen

    # ---------------------------------------------------------------- enqueue
    @torch.no_grad()
    def enqueue(self, keys: Tensor, labels: Tensor) -> None:
        """Write a batch of keys into the bank (MoCo order: call after the
        optimizer step, with detached keys).

        Args:
            keys (Tensor): (B, D, h, w) embeddings (L2-normalised here
                again along D). Pixels whose key cannot be normalised (a
                NaN / inf value, a norm that is 0 or overflows) are dropped
                (never enqueued) and counted in :attr:`last_nonfinite`.
            labels (Tensor): (B, h, w) long labels at the key resolution
                (a different resolution is nearest-resized like the loss
                does); ``ignore_index`` and labels outside ``[0, C)`` are
                never enqueued.
        """
        if keys.dim() != 4 or keys.shape[1] != self.feat_dim:
            raise ValueError(
                f'PixelMemoryBank.enqueue: keys must be (B, {self.feat_dim}, '
                f'h, w), got {tuple(keys.shape)}')
        if labels.dim() == 4 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.dim() != 3 or labels.shape[0] != keys.shape[0]:
            raise ValueError(
                f'PixelMemoryBank.enqueue: labels must be (B, h, w) with '
                f'B={keys.shape[0]}, got {tuple(labels.shape)}')
        if labels.is_floating_point():
            raise ValueError('PixelMemoryBank.enqueue: labels must be an '
                             f'integer tensor, got {labels.dtype}')
        world = get_world_size() if self.gather else 1
        B, HW = keys.shape[0], keys.shape[2] * keys.shape[3]
        M = self.memory_size
        K = min(self.pixel_per_image, HW)
        if world * B * K >= M:
            raise ValueError(
                f'PixelMemoryBank: memory_size ({M}) must exceed the number '
                f'of pixels one enqueue can write per class (ranks x images '
                f'x min(pixel_per_image, h*w) = {world} x {B} x {K}).')
        dev = self.pixel_queue.device
        labels = resize_labels_nearest(labels.detach().long(),
                                       keys.shape[-2:]).to(dev)
        with fp32_region(dev):
            self._enqueue(keys.detach().to(device=dev, dtype=torch.float32),
                          labels, world, K)
        self.num_updates += 1
        self._host_updates += 1

    def _enqueue(self, keys: Tensor, labels: Tensor, world: int, K: int):
        """:meth:`enqueue` on fp32 ``keys`` and labels on the bank's
        device."""
        B, D = keys.shape[:2]
        HW = keys.shape[2] * keys.shape[3]
        C, dev = self.num_classes, keys.device
        # segment = normalise(mean of the normalised pixel keys), as the
        # reference (heads pass unit keys already). F.normalize's arithmetic,
        # keeping the norm: a key whose norm is not finite or ~0 has no
        # direction and would enter the bank as a zero vector
        norm = keys.norm(p=2, dim=1, keepdim=True)
        keys = keys / norm.clamp_min(_NORM_EPS).expand_as(keys)
        feats = keys.flatten(2)  # (B, D, HW)
        lab = labels.reshape(B, HW)
        in_range = (lab >= 0) & (lab < C) & (lab != self.ignore_index)
        norm = norm.reshape(B, HW)
        usable = torch.isfinite(norm) & (norm > _NORM_EPS)
        valid = in_range & usable
        self.last_nonfinite = (in_range & ~usable).sum()
        feats = torch.where(usable[:, None], feats, feats.new_zeros(()))

        seg, present = self._segment_means(feats, lab, valid)
        pix, filled = self._sample_pixels(feats, lab, valid, K)
        cls = torch.arange(C, device=dev)
        seg_cls = torch.where(present, cls, C)  # (B, C); C = nothing
        pix_cls = torch.where(filled, cls[:, None], C)  # (B, C, K)
        seg, seg_cls = seg.reshape(B * C, D), seg_cls.reshape(-1)
        pix, pix_cls = pix.reshape(B * C * K, D), pix_cls.reshape(-1)
        if world > 1:
            seg, seg_cls, pix, pix_cls = self._gather_written(
                seg, seg_cls, pix, pix_cls)
        self._write_rows(self.segment_queue, self.segment_ptr,
                         self.segment_count, seg, seg_cls)
        self._write_rows(self.pixel_queue, self.pixel_ptr, self.pixel_count,
                         pix, pix_cls)

    def _segment_means(self, feats: Tensor, lab: Tensor, valid: Tensor):
        """(B, C, D) unit segment means and (B, C) presence, by one
        ``scatter_add_`` over the (B, D, HW) map (invalid -> dump column C);
        no (B, HW, C) one-hot."""
        B, D, HW = feats.shape
        C = self.num_classes
        lab_d = torch.where(valid, lab, C)  # (B, HW)
        sums = feats.new_zeros(B, D, C + 1).scatter_add_(
            2, lab_d[:, None].expand(B, D, HW), feats)
        cnt = torch.zeros(B, C + 1, dtype=torch.long,
                          device=feats.device).scatter_add_(
                              1, lab_d, torch.ones_like(lab_d))
        # mean direction == sum direction; a sum of ~0 has none
        sums = sums[:, :, :C].transpose(1, 2)
        present = (cnt[:, :C] > 0) & (sums.norm(dim=-1) > _NORM_EPS)
        return F.normalize(sums, p=2, dim=-1, eps=_NORM_EPS), present

    def _sample_pixels(self, feats: Tensor, lab: Tensor, valid: Tensor,
                       K: int):
        """K random pixels of each (image, class) group: (B, C, K, D) keys and
        (B, C, K) flags of the slots that hold a pixel. A random-key sort and
        the rank within (image, class) groups, no loop."""
        B, D, HW = feats.shape
        C, dev = self.num_classes, feats.device
        N = B * HW
        g = (torch.arange(B, device=dev)[:, None] * C + lab).reshape(N)
        g = torch.where(valid.reshape(N), g, B * C)
        rnd = torch.rand(N, device=dev, generator=self._generator(dev))
        order = torch.argsort(rnd)
        order = order[torch.argsort(g[order], stable=True)]  # by (g, random)
        g_sorted = g[order]
        cnt_all = torch.zeros(B * C + 1, dtype=torch.long,
                              device=dev).scatter_add_(0, g,
                                                       torch.ones_like(g))
        start = torch.cumsum(cnt_all, 0) - cnt_all
        rank = torch.arange(N, device=dev) - start[g_sorted]
        take = (g_sorted < B * C) & (rank < K)
        # compact into a static (B*C*K) table, the rest to a dump slot
        slot = torch.where(take, g_sorted * K + rank, B * C * K)
        table = torch.zeros(B * C * K + 1, dtype=torch.long, device=dev)
        table.scatter_(0, slot, order)
        pix_idx = table[:B * C * K].view(B, C, K)
        n_write = cnt_all[:B * C].view(B, C).clamp(max=K)
        filled = torch.arange(K, device=dev) < n_write[..., None]
        b_idx = torch.arange(B, device=dev)[:, None, None].expand(B, C, K)
        pix = feats[b_idx.reshape(-1), :, (pix_idx % HW).reshape(-1)]
        return pix.view(B, C, K, D), filled

    def _gather_written(self, seg: Tensor, seg_cls: Tensor, pix: Tensor,
                        pix_cls: Tensor):
        """All-gather only the rows this rank writes (segment means and
        sampled pixels with their classes), not the key map.

        One all-gather of the row counts (and of the non-finite count), one
        host read of them, then one all-gather of ``[rows | class]`` padded
        to the largest count. Returns every rank's rows in rank order, the
        padding rows with class ``C`` (written nowhere).
        """
        C, D = self.num_classes, seg.shape[1]
        counts = torch.stack([(seg_cls < C).sum(), (pix_cls < C).sum(),
                              self.last_nonfinite])
        counts = torch.stack(all_gather(counts))  # (world, 3)
        self.last_nonfinite = counts[:, 2].sum()
        n_seg, n_pix = (int(v) for v in counts[:, :2].amax(0).tolist())

        def compact(rows, cls, n):
            # written rows first, in their order (stable); then padding rows
            keep = torch.argsort((cls == C).to(torch.uint8), stable=True)[:n]
            return torch.cat([rows[keep], cls[keep, None].to(rows.dtype)], 1)

        payload = torch.cat([compact(seg, seg_cls, n_seg),
                             compact(pix, pix_cls, n_pix)])
        got = torch.stack(all_gather(payload))  # (world, n_seg + n_pix, D+1)
        rows, cls = got[..., :D], got[..., D].round().long()
        return (rows[:, :n_seg].reshape(-1, D), cls[:, :n_seg].reshape(-1),
                rows[:, n_seg:].reshape(-1, D), cls[:, n_seg:].reshape(-1))

    # (N, D) rows of classes (N,) into a ring queue; see bank_ops
    _write_rows = staticmethod(write_ring_rows)


def ddp_ignore_memory_banks(model: nn.Module) -> List[str]:
    """Exclude every :class:`PixelMemoryBank` buffer in ``model`` from DDP
    parameter/buffer broadcast.

    Sets (extends) ``model._ddp_params_and_buffers_to_ignore``, which torch's
    ``DistributedDataParallel`` honours when it wraps ``model``: call it on
    the module that gets wrapped (the segmentor) before the wrapper is built.
    The banks stay identical on all ranks because :meth:`enqueue` all-gathers.
    Returns the fully qualified names added.
    """
    names = []
    for mod_name, mod in model.named_modules():
        if isinstance(mod, PixelMemoryBank):
            prefix = f'{mod_name}.' if mod_name else ''
            names.extend(prefix + b for b in mod.buffer_names())
    existing = list(getattr(model, '_ddp_params_and_buffers_to_ignore', []))
    model._ddp_params_and_buffers_to_ignore = existing + [
        n for n in names if n not in existing]
    return names

