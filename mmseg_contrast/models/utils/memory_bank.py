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
* keys and labels are all-gathered across ranks (``mmengine.dist.all_gather``)
  and the random pixel choice uses a generator seeded identically on every
  rank from ``(seed, number of updates)``, so all ranks hold the identical
  bank (the reference keeps only rank 0's enqueues through DDP buffer
  broadcast); the bank's buffers should be excluded from DDP buffer
  broadcast, see :func:`ddp_ignore_memory_banks`;
* the queues start empty (zeros) and ``pixel_count`` / ``segment_count``
  track how many slots of each class are filled, so the loss ignores
  unfilled slots (the reference starts from random unit vectors that act as
  real keys until overwritten).

The enqueue is fully vectorised and free of host synchronisation: segment
means by one ``scatter_add_`` over the key map, pixel picks by a
random-key sort and rank within (image, class) groups, and ring-buffer writes
by one ``index_copy_`` per queue (slots of pairs that write nothing receive
their own current value).
"""
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_gather, get_world_size
from mmseg.registry import MODELS
from torch import Tensor

__all__ = ['PixelMemoryBank', 'ddp_ignore_memory_banks']

_BANK_BUFFERS = ('pixel_queue', 'segment_queue', 'pixel_ptr', 'segment_ptr',
                 'pixel_count', 'segment_count', 'num_updates')


def resize_labels_nearest(labels: Tensor, size) -> Tensor:
    """Legacy PyTorch ``'nearest'`` label resize (``src = floor(dst*in/out)``),
    exactly as the reference (``F.interpolate(..., mode='nearest')``)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    out = F.interpolate(
        labels[:, None].float(), size=tuple(size), mode='nearest')
    return out[:, 0].to(labels.dtype)


@MODELS.register_module()
class PixelMemoryBank(nn.Module):
    """Per-class ring buffers of segment and pixel embeddings.

    Args:
        num_classes (int): C.
        feat_dim (int): D, the embedding size. Default 256.
        memory_size (int): M, slots per class and per queue. Default 5000.
        pixel_per_image (int): pixels enqueued per (image, class). Default 10.
        ignore_index (int): label never enqueued. Default 255.
        gather (bool): all-gather keys and labels across ranks before
            enqueueing (no-op when not distributed). Default True.
        seed (int): base seed of the pixel-choice generator. Default 0.

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
        for name, val in (('num_classes', num_classes), ('feat_dim', feat_dim),
                          ('memory_size', memory_size),
                          ('pixel_per_image', pixel_per_image)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(
                    f'PixelMemoryBank: {name} must be a positive int, '
                    f'got {val!r}')
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
        # identical on every rank and after resume: depends only on the seed
        # and the number of updates so far (a fresh generator each call, so
        # the module stays deep-copyable)
        gen = torch.Generator(device=device)
        gen.manual_seed(self.seed * 1_000_003 + self._host_updates)
        return gen

    # ---------------------------------------------------------------- enqueue
    @torch.no_grad()
    def enqueue(self, keys: Tensor, labels: Tensor) -> None:
        """Write a batch of keys into the bank (MoCo order: call after the
        optimizer step, with detached keys).

        Args:
            keys (Tensor): (B, D, h, w) embeddings (L2-normalised here
                again along D).
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
        keys = keys.detach()
        labels = resize_labels_nearest(labels.long(), keys.shape[-2:])
        if self.gather and get_world_size() > 1:
            keys = torch.cat(all_gather(keys.contiguous()), dim=0)
            labels = torch.cat(all_gather(labels.contiguous()), dim=0)
        B = keys.shape[0]
        HW = keys.shape[2] * keys.shape[3]
        C, M = self.num_classes, self.memory_size
        K = min(self.pixel_per_image, HW)
        if B * K >= M:
            raise ValueError(
                f'PixelMemoryBank: memory_size ({M}) must exceed the number '
                f'of pixels one enqueue can write per class (images x '
                f'min(pixel_per_image, h*w) = {B} x {K}, all ranks).')
        dev = self.pixel_queue.device
        # segment = normalise(mean of the normalised pixel keys), as the
        # reference; the heads pass unit keys already, this makes it exact
        keys = F.normalize(
            keys.to(device=dev, dtype=self.pixel_queue.dtype), p=2, dim=1)
        labels = labels.to(dev)
        feats = keys.flatten(2)  # (B, D, HW), a view
        lab = labels.reshape(B, HW)
        valid = (lab >= 0) & (lab < C) & (lab != self.ignore_index)
        lab_c = torch.where(valid, lab, torch.zeros_like(lab))

        # ---- segments: per-(image, class) sums by one scatter_add over the
        # (B, D, HW) map (ignore -> dump column C); no (B, HW, C) one-hot
        lab_d = torch.where(valid, lab, torch.full_like(lab, C))  # (B, HW)
        D = feats.shape[1]
        sums = feats.new_zeros(B, D, C + 1).scatter_add_(
            2, lab_d[:, None].expand(B, D, HW), feats)
        cnt = torch.zeros(B, C + 1, dtype=torch.long,
                          device=dev).scatter_add_(1, lab_d,
                                                   torch.ones_like(lab_d))
        cnt = cnt[:, :C]  # (B, C)
        # mean direction == sum direction
        seg = F.normalize(sums[:, :, :C].transpose(1, 2), p=2, dim=-1)
        present = cnt > 0  # (B, C)
        self._ring_write(self.segment_queue, self.segment_ptr,
                         self.segment_count, seg.reshape(B * C, -1),
                         present.reshape(B * C).long())

        # ---- pixels: K random pixels of each (image, class) group
        N = B * HW
        g = (torch.arange(B, device=dev)[:, None] * C + lab_c).reshape(N)
        g = torch.where(valid.reshape(N), g, torch.full_like(g, B * C))
        gen = self._generator(dev)
        rnd = torch.rand(N, device=dev, generator=gen)
        order = torch.argsort(rnd)
        order = order[torch.argsort(g[order], stable=True)]  # by (g, random)
        g_sorted = g[order]
        cnt_all = torch.zeros(B * C + 1, dtype=torch.long,
                              device=dev).scatter_add_(0, g, torch.ones_like(g))
        start = torch.cumsum(cnt_all, 0) - cnt_all
        rank = torch.arange(N, device=dev) - start[g_sorted]
        take = (g_sorted < B * C) & (rank < K)
        # compact into a static (B*C*K) table, the rest to a dump slot
        slot = torch.where(take, g_sorted * K + rank,
                           torch.full_like(rank, B * C * K))
        table = torch.zeros(B * C * K + 1, dtype=torch.long, device=dev)
        table.scatter_(0, slot, order)
        pix_idx = table[:B * C * K].view(B, C, K)
        n_write = cnt.long().clamp(max=K)  # (B, C)
        filled = (torch.arange(K, device=dev)[None, None] <
                  n_write[..., None])  # (B, C, K)
        b_idx = torch.arange(B, device=dev)[:, None, None].expand(B, C, K)
        pix = feats[b_idx.reshape(-1), :, (pix_idx % HW).reshape(-1)]
        self._ring_write(self.pixel_queue, self.pixel_ptr, self.pixel_count,
                         pix, filled.reshape(B * C * K).long(), per_pair=K)
        self.num_updates += 1
        self._host_updates += 1

    @staticmethod
    def _ring_write(queue: Tensor,
                    ptr: Tensor,
                    count: Tensor,
                    values: Tensor,
                    write: Tensor,
                    per_pair: int = 1) -> None:
        """Write ``values`` rows flagged by ``write`` into ``queue``.

        ``values`` is laid out as (B, C, per_pair, D) flattened; for each class
        the flagged rows go to consecutive slots from ``ptr[c]`` (images in
        batch order, then the within-image order), modulo M. Unflagged rows
        target the first slot after this step's writes of their class and
        carry that slot's current value, so one ``index_copy_`` does it all
        (duplicates only ever write identical values).
        """
        C, M, D = queue.shape
        w = write.view(-1, C, per_pair)  # (B, C, K)
        # rows per class, in (b, k) order -> exclusive cumsum gives offsets
        w_ck = w.permute(1, 0, 2).reshape(C, -1)  # (C, B*K)
        offs = torch.cumsum(w_ck, 1) - w_ck
        n_c = w_ck.sum(1)  # (C,)
        cls = torch.arange(C, device=queue.device)[:, None].expand_as(w_ck)
        slot = torch.where(w_ck.bool(), ptr[:, None] + offs,
                           (ptr + n_c)[:, None].expand_as(w_ck)) % M
        flat = cls * M + slot  # (C, B*K)
        qflat = queue.view(C * M, D)
        vals = values.view(-1, C, per_pair, D).permute(1, 0, 2, 3).reshape(
            C, -1, D)
        old = qflat[flat.reshape(-1)].view(C, -1, D)
        vals = torch.where(w_ck.bool()[..., None], vals.to(queue.dtype), old)
        qflat.index_copy_(0, flat.reshape(-1), vals.reshape(-1, D))
        ptr.copy_((ptr + n_c) % M)
        count.copy_(torch.clamp(count + n_c, max=M))


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

