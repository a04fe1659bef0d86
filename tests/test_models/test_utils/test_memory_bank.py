"""PixelMemoryBank: ring-buffer semantics, class-correct pixels, segment
means, ignore handling, determinism and DDP-ignore names."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_contrast.models.utils import (
    PixelMemoryBank,
    ddp_ignore_memory_banks,
)

from helpers.devices import DEVICES


def _enqueue(bank, keys, labels, device):
    """Enqueue on ``device`` (the bank moved there), then bring the bank
    back to the CPU for the checks."""
    bank.to(device).enqueue(keys.to(device), labels.to(device))
    return bank.cpu()


def _unit(*shape, seed=0, dim=1):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=dim)


def _labels():
    """2 images 4x6: img0 classes 0 (12 px), 1 (8 px), ignore (4 px);
    img1 classes 1 (6 px), 2 (18 px)."""
    lab = torch.zeros(2, 4, 6, dtype=torch.long)
    lab[0, :, 3:] = 1
    lab[0, 0, 3:] = 0
    lab[0, 3, :4] = 255
    lab[1] = 2
    lab[1, :1] = 1
    return lab


def _match_rows(entries, keys_flat):
    """Index of the key each entry equals (exactly, up to fp rounding)."""
    d = torch.cdist(entries, keys_flat,
                    compute_mode='donot_use_mm_for_euclid_dist')
    val, idx = d.min(1)
    assert (val < 1e-5).all(), val
    return idx


def test_build_and_buffers():
    bank = MODELS.build(dict(type='PixelMemoryBank', num_classes=3,
                             feat_dim=8, memory_size=16))
    assert isinstance(bank, PixelMemoryBank)
    sd = bank.state_dict()
    assert sd['pixel_queue'].shape == (3, 16, 8)
    assert sd['segment_queue'].shape == (3, 16, 8)
    for k in ('pixel_ptr', 'segment_ptr', 'pixel_count', 'segment_count'):
        assert sd[k].shape == (3, ) and sd[k].dtype == torch.long
    assert not bank.pixel_filled.any() and not bank.segment_filled.any()
    with pytest.raises(ValueError, match='memory_size'):
        PixelMemoryBank(num_classes=3, memory_size=0)


@pytest.mark.parametrize('device', DEVICES)
def test_enqueue_segments_and_class_correct_pixels(device):
    C, D, K = 3, 8, 5
    bank = PixelMemoryBank(num_classes=C, feat_dim=D, memory_size=32,
                           pixel_per_image=K)
    keys = _unit(2, D, 4, 6, seed=1)
    lab = _labels()
    _enqueue(bank, keys, lab, device)
    # segment entries: one per (image, class) present, images in order
    assert bank.segment_ptr.tolist() == [1, 2, 1]
    assert bank.segment_count.tolist() == [1, 2, 1]
    for c, imgs in ((0, [0]), (1, [0, 1]), (2, [1])):
        for slot, b in enumerate(imgs):
            m = lab[b] == c
            mean = keys[b][:, m].mean(1)
            torch.testing.assert_close(bank.segment_queue[c, slot],
                                       F.normalize(mean, dim=0))
    # pixels: min(count, K) per (image, class), of that class, distinct
    counts = {(0, 0): 12, (0, 1): 8, (1, 1): 6, (1, 2): 18}
    exp_ptr = [5, 10, 5]
    assert bank.pixel_ptr.tolist() == exp_ptr
    assert bank.pixel_count.tolist() == exp_ptr
    for c in range(C):
        slot = 0
        for b in range(2):
            n = min(counts.get((b, c), 0), K)
            if n == 0:
                continue
            ents = bank.pixel_queue[c, slot:slot + n]
            idx = _match_rows(ents, keys[b].flatten(1).t())
            assert len(set(idx.tolist())) == n
            assert (lab[b].flatten()[idx] == c).all()
            slot += n
    # untouched slots stay zero / unfilled
    assert bank.pixel_queue[0, 5:].abs().sum() == 0
    assert bank.pixel_filled.sum(1).tolist() == exp_ptr


@pytest.mark.parametrize('device', DEVICES)
def test_ignore_and_out_of_range_labels_never_enqueued(device):
    C, D = 3, 8
    bank = PixelMemoryBank(num_classes=C, feat_dim=D, memory_size=64,
                           pixel_per_image=30)
    keys = _unit(2, D, 4, 6, seed=2)
    lab = _labels()
    lab[1, 1, :2] = 7  # >= C: not a class of the bank
    _enqueue(bank, keys, lab, device)
    flat_lab = lab.flatten(1)
    enq = []
    for c in range(C):
        n = int(bank.pixel_count[c])
        enq.append(bank.pixel_queue[c, :n])
    ents = torch.cat(enq)
    all_keys = keys.flatten(2).permute(0, 2, 1).reshape(-1, D)
    idx = _match_rows(ents, all_keys)
    got_lab = flat_lab.reshape(-1)[idx]
    assert not (got_lab == 255).any() and not (got_lab == 7).any()
    # all valid pixels fit (30 per image): every valid pixel once
    n_valid = int(((lab >= 0) & (lab < C)).sum())
    assert ents.shape[0] == n_valid and len(set(idx.tolist())) == n_valid
    # the segment mean of class 2 in image 1 excludes the label-7 pixels
    m = lab[1] == 2
    torch.testing.assert_close(bank.segment_queue[2, 0],
                               F.normalize(keys[1][:, m].mean(1), dim=0))


@pytest.mark.parametrize('device', DEVICES)
def test_class_zero_is_enqueued(device):
    bank = PixelMemoryBank(num_classes=2, feat_dim=4, memory_size=8,
                           pixel_per_image=2)
    _enqueue(bank, _unit(1, 4, 2, 2),
             torch.zeros(1, 2, 2, dtype=torch.long), device)
    assert bank.pixel_count.tolist() == [2, 0]
    assert bank.segment_count.tolist() == [1, 0]


@pytest.mark.parametrize('device', DEVICES)
def test_ring_buffer_wraps_and_overwrites_oldest(device):
    D, M, K = 4, 12, 5
    bank = PixelMemoryBank(num_classes=1, feat_dim=D, memory_size=M,
                           pixel_per_image=K)
    lab = torch.zeros(1, 3, 3, dtype=torch.long)  # 9 px >= K
    writes = []
    for step in range(3):
        keys = _unit(1, D, 3, 3, seed=10 + step)
        before = bank.pixel_queue.clone()
        _enqueue(bank, keys, lab, device)
        writes.append((keys, before))
    # 3 x 5 = 15 writes: ptr 15 % 12 = 3, all 12 slots filled
    assert bank.pixel_ptr.tolist() == [3]
    assert bank.pixel_count.tolist() == [12]
    assert bank.pixel_filled.all()
    keys3, before3 = writes[2]
    # third write went to slots 10, 11, 0, 1, 2
    slots = [10, 11, 0, 1, 2]
    _match_rows(bank.pixel_queue[0, slots], keys3[0].flatten(1).t())
    # slots 3..9 still hold what was there before the third write
    torch.testing.assert_close(bank.pixel_queue[0, 3:10], before3[0, 3:10])
    # segment queue: one entry per step
    assert bank.segment_ptr.tolist() == [3]
    assert bank.segment_count.tolist() == [3]


@pytest.mark.parametrize('device', DEVICES)
def test_full_resolution_labels_are_nearest_resized(device):
    D = 4
    bank = PixelMemoryBank(num_classes=2, feat_dim=D, memory_size=64,
                           pixel_per_image=16)  # > the 4 key pixels
    keys = _unit(1, D, 2, 2, seed=3)
    full = torch.tensor([[[0, 9, 1, 9], [9, 9, 9, 9], [1, 9, 1, 9],
                          [9, 9, 9, 9]]])  # label[2i, 2j] == [[0,1],[1,1]]
    _enqueue(bank, keys, full, device)
    assert bank.pixel_count.tolist() == [1, 3]


@pytest.mark.parametrize('device', DEVICES)
def test_deterministic_and_resume_safe(device):
    lab = _labels().to(device)
    k1 = _unit(2, 8, 4, 6, seed=4).to(device)
    k2 = _unit(2, 8, 4, 6, seed=5).to(device)
    a = PixelMemoryBank(num_classes=3, feat_dim=8, memory_size=32,
                        pixel_per_image=3, seed=7).to(device)
    a.enqueue(k1, lab)
    # resume: a fresh bank loading a's state continues exactly like a
    b = PixelMemoryBank(num_classes=3, feat_dim=8, memory_size=32,
                        pixel_per_image=3, seed=7).to(device)
    b.load_state_dict(a.state_dict())
    a.enqueue(k2, lab)
    b.enqueue(k2, lab)
    for name in PixelMemoryBank.buffer_names():
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    # a different seed picks different pixels
    c = PixelMemoryBank(num_classes=3, feat_dim=8, memory_size=32,
                        pixel_per_image=3, seed=8).to(device)
    c.load_state_dict(a.state_dict())
    a.enqueue(k2, lab)
    c.enqueue(k2, lab)
    assert not torch.equal(a.pixel_queue, c.pixel_queue)
    torch.testing.assert_close(a.segment_queue, c.segment_queue)


def test_consecutive_enqueues_draw_new_pixels():
    bank = PixelMemoryBank(num_classes=1, feat_dim=8, memory_size=64,
                           pixel_per_image=4)
    keys = _unit(1, 8, 8, 8, seed=6)
    lab = torch.zeros(1, 8, 8, dtype=torch.long)
    bank.enqueue(keys, lab)
    bank.enqueue(keys, lab)
    assert not torch.equal(bank.pixel_queue[0, :4], bank.pixel_queue[0, 4:8])


def test_bad_inputs():
    bank = PixelMemoryBank(num_classes=3, feat_dim=8, memory_size=16,
                           pixel_per_image=10)
    with pytest.raises(ValueError, match='keys must be'):
        bank.enqueue(torch.zeros(2, 4, 4, 4), torch.zeros(2, 4, 4).long())
    with pytest.raises(ValueError, match='labels must be'):
        bank.enqueue(torch.zeros(2, 8, 4, 4), torch.zeros(3, 4, 4).long())
    with pytest.raises(ValueError, match='integer'):
        bank.enqueue(torch.zeros(2, 8, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match='memory_size'):
        bank.enqueue(torch.zeros(2, 8, 4, 4), torch.zeros(2, 4, 4).long())


def test_ddp_ignore_names():
    model = nn.Module()
    model.head = nn.Module()
    model.head.memory_bank = PixelMemoryBank(num_classes=2, feat_dim=4,
                                             memory_size=8,
                                             pixel_per_image=2)
    model.head.conv = nn.Conv2d(1, 1, 1)
    names = ddp_ignore_memory_banks(model)
    assert 'head.memory_bank.pixel_queue' in names
    assert 'head.memory_bank.segment_ptr' in names
    buffers = {n for n, _ in model.named_buffers()}
    assert set(names) == buffers  # exactly the bank's buffers
    assert set(model._ddp_params_and_buffers_to_ignore) == set(names)
    ddp_ignore_memory_banks(model)  # idempotent
    assert len(model._ddp_params_and_buffers_to_ignore) == len(names)


@pytest.mark.parametrize('device', DEVICES)
def test_nonfinite_keys_are_dropped_and_counted(device):
    C, D, K = 3, 8, 30
    bank = PixelMemoryBank(num_classes=C, feat_dim=D, memory_size=64,
                           pixel_per_image=K)
    keys = _unit(2, D, 4, 6, seed=7)
    lab = _labels()
    bad = torch.zeros(2, 4, 6, dtype=torch.bool)
    bad[0, 0, 0] = bad[1, 2, 3] = True  # class 0 and class 2 pixels
    bad[0, 3, 0] = True  # an ignore pixel: not counted (never a candidate)
    keys[:, 0][bad] = float('nan')
    keys[1, 1, 3, 3] = float('inf')  # class 2
    _enqueue(bank, keys, lab, device)
    assert int(bank.last_nonfinite) == 3
    assert torch.isfinite(bank.pixel_queue).all()
    assert torch.isfinite(bank.segment_queue).all()
    # every finite valid pixel is enqueued once (K exceeds every group)
    n_valid = int((lab != 255).sum()) - 3
    assert int(bank.pixel_count.sum()) == n_valid
    # the class-2 segment of image 1 is the mean of its finite keys only
    ok = (lab[1] == 2) & torch.isfinite(keys[1]).all(0)
    torch.testing.assert_close(bank.segment_queue[2, 0],
                               F.normalize(keys[1][:, ok].mean(1), dim=0))


@pytest.mark.parametrize('device', DEVICES)
def test_all_nan_step_leaves_the_bank_untouched(device):
    bank = PixelMemoryBank(num_classes=3, feat_dim=8, memory_size=32,
                           pixel_per_image=3)
    lab = _labels()
    _enqueue(bank, _unit(2, 8, 4, 6, seed=8), lab, device)
    before = {n: getattr(bank, n).clone() for n in bank.buffer_names()}
    _enqueue(bank, torch.full((2, 8, 4, 6), float('nan')), lab, device)
    assert int(bank.last_nonfinite) == int((lab != 255).sum())
    for n in ('pixel_queue', 'segment_queue', 'pixel_ptr', 'segment_ptr',
              'pixel_count', 'segment_count'):
        assert torch.equal(getattr(bank, n), before[n]), n
    assert int(bank.num_updates) == 2


def _gather_worker(rank, init_file, out_dir):
    import os

    import torch.distributed as torch_dist
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo', init_method=f'file://{init_file}',
                                  rank=rank, world_size=2)
    try:
        from mmseg_contrast.models.utils import memory_bank as mb
        sent = []
        real = mb.all_gather
        mb.all_gather = lambda t: sent.append(t.numel()) or real(t)
        keys, lab = _ranked_batch(rank)
        bank = PixelMemoryBank(num_classes=3, feat_dim=8, memory_size=32,
                               pixel_per_image=3)
        bank.enqueue(keys, lab)
        state = {n: getattr(bank, n) for n in bank.buffer_names()}
        state['nonfinite'] = bank.last_nonfinite
        state['sent'] = torch.tensor(sent)
        torch.save(state, os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        torch_dist.destroy_process_group()


def _ranked_batch(rank):
    keys = _unit(2, 8, 4, 6, seed=20 + rank)
    lab = _labels()
    if rank == 1:  # fewer (image, class) pairs than rank 0: padded rows
        lab[0] = 2
        keys[1, :, 0, 0] = float('nan')  # one class-1 pixel of image 1
    return keys, lab


def test_two_ranks_gather_only_written_rows_and_agree(tmp_path):
    import torch.multiprocessing as mp
    mp.spawn(_gather_worker, args=(str(tmp_path / 'init'), str(tmp_path)),
             nprocs=2, join=True)
    s0, s1 = (torch.load(tmp_path / f'rank{r}.pth') for r in (0, 1))
    for name in PixelMemoryBank.buffer_names():
        assert torch.equal(s0[name], s1[name]), name
    assert int(s0['nonfinite']) == int(s1['nonfinite']) == 1
    # traffic: the counts, then (segments + pixels) x (D + 1) padded to the
    # larger rank (rank 0: 4 segments and 3 + 3 + 3 + 3 pixels), never the
    # (2, 8, 4, 6) key map
    assert s0['sent'].tolist() == [3, (4 + 12) * 9]
    # the segment queue is exactly that of one process enqueueing both
    # ranks' images in rank order (segment means are not sampled)
    k0, l0 = _ranked_batch(0)
    k1, l1 = _ranked_batch(1)
    one = PixelMemoryBank(num_classes=3, feat_dim=8, memory_size=32,
                          pixel_per_image=3)
    one.enqueue(torch.cat([k0, k1]), torch.cat([l0, l1]))
    for name in ('segment_queue', 'segment_ptr', 'segment_count',
                 'pixel_ptr', 'pixel_count'):
        assert torch.equal(getattr(one, name), s0[name]), name
    # every pixel entry is a finite key of its class from one of the images
    keys = torch.cat([k0, k1]).flatten(2).permute(0, 2, 1).reshape(-1, 8)
    labs = torch.cat([l0, l1]).reshape(-1)
    for c in range(3):
        ents = s0['pixel_queue'][c, :int(s0['pixel_count'][c])]
        ok = torch.isfinite(keys).all(1)
        idx = _match_rows(ents, torch.where(ok[:, None], keys, 1e3))
        assert (labs[idx] == c).all()
