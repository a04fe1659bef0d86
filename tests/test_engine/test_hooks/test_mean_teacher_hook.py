"""MeanTeacherHook: exact EMA math, resume through a Runner, and DDP."""
import copy
import os
import os.path as osp
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import MessageHub

from mmseg_contrast.engine.hooks import MeanTeacherHook
from mmseg_contrast.engine.hooks.mean_teacher_hook import ema_weight_on_first

from helpers.devices import DEVICES
from helpers.semi_helpers import make_batch, quiet_init, semi_cfg


class _Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.student = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        self.teacher = copy.deepcopy(self.student)
        self.teacher.requires_grad_(False)


def _runner(model, it):
    return SimpleNamespace(model=model, iter=it,
                           message_hub=MessageHub.get_current_instance())


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('skip_buffer', [False, True])
def test_ema_math_exact(skip_buffer, device):
    torch.manual_seed(0)
    toy = _Toy().to(device)
    hook = MeanTeacherHook(skip_buffer=skip_buffer)
    assert [hook.decay(t) for t in (0, 1, 2, 98, 99, 5000)] == [
        0., 0.5, 1 - 1 / 3, 1 - 1 / 99, 0.99, 0.99]
    for t in (0, 1, 2, 150):
        with torch.no_grad():
            for p in toy.student.parameters():
                p.add_(torch.randn_like(p))
        # moves the running stats
        toy.student.train()(torch.randn(8, 3).to(device))
        t_before, s_now = _state(toy.teacher), _state(toy.student)
        hook.after_train_iter(_runner(toy, t), t)
        d = min(1 - 1 / (t + 1), 0.99)
        after = _state(toy.teacher)
        for k, v in after.items():
            if k.endswith('num_batches_tracked'):
                exp = t_before[k] if skip_buffer else s_now[k]
                assert torch.equal(v, exp)
            elif 'running' in k and skip_buffer:
                assert torch.equal(v, t_before[k])
            else:
                exp = d * t_before[k] + (1 - d) * s_now[k]
                assert torch.allclose(v, exp, rtol=0, atol=1e-6), (t, k)
        if t == 0:  # decay 0: an exact copy
            for k, v in after.items():
                if 'running' not in k or not skip_buffer:
                    if not k.endswith('num_batches_tracked') or \
                            not skip_buffer:
                        assert torch.equal(v, s_now[k])


def _loop_update(model, decay, skip_buffer):
    """The per-tensor EMA loop the multi-tensor update replaced."""
    student = dict(model.student.named_parameters())
    with torch.no_grad():
        for name, t in model.teacher.named_parameters():
            if decay == 0.:
                t.copy_(student[name])
            else:
                t.lerp_(student[name].to(t.dtype), 1. - decay)
        if skip_buffer:
            return
        s_buffers = dict(model.student.named_buffers())
        for name, t in model.teacher.named_buffers():
            if t.is_floating_point() and decay != 0.:
                t.lerp_(s_buffers[name].to(t.dtype), 1. - decay)
            else:
                t.copy_(s_buffers[name])


def _noise(shape, seed, device):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(device)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('skip_buffer', [False, True])
def test_foreach_update_equals_the_per_tensor_loop(skip_buffer, device):
    """``torch._foreach_lerp_`` / ``_foreach_copy_`` give bit for bit what
    one ``lerp_`` / ``copy_`` per tensor gives, fp32, and with a bf16
    teacher (the student is cast as before)."""
    torch.manual_seed(0)
    toy = _Toy().to(device)
    hook = MeanTeacherHook(skip_buffer=skip_buffer)
    for t_dtype in (torch.float32, torch.bfloat16):
        fused = copy.deepcopy(toy)
        fused.teacher.to(t_dtype)
        loop = copy.deepcopy(fused)
        for t, decay in enumerate((0., 0.5, 0.9, 0.99, 0.3)):
            for m in (fused, loop):  # the same new student in both
                with torch.no_grad():
                    for p in m.student.parameters():
                        p.add_(_noise(p.shape, t, device))
                m.student.train()(_noise((8, 3), t, device))
            hook.momentum_update(fused, decay)
            _loop_update(loop, decay, skip_buffer)
            got, want = fused.state_dict(), loop.state_dict()
            for k in want:
                assert got[k].dtype == want[k].dtype, k
                assert torch.equal(got[k], want[k]), (t_dtype, decay, k)


def test_interval_constant_schedule_and_errors():
    toy = _Toy()
    hook = MeanTeacherHook(max_decay=0.9, decay_schedule='constant',
                           interval=2)
    with torch.no_grad():
        toy.student[0].weight.add_(1.)
    before = toy.teacher[0].weight.clone()
    hook.after_train_iter(_runner(toy, 0), 0)  # (0 + 1) % 2 != 0: no update
    assert torch.equal(toy.teacher[0].weight, before)
    hook.after_train_iter(_runner(toy, 1), 1)
    assert torch.allclose(toy.teacher[0].weight,
                          0.9 * before + 0.1 * toy.student[0].weight)
    with pytest.raises(ValueError, match='decay_schedule'):
        MeanTeacherHook(decay_schedule='linear')
    with pytest.raises(TypeError, match='teacher'):
        hook.after_train_iter(_runner(nn.Linear(2, 2), 1), 1)


def _simulated_weight_on_first(hook, k, T):
    """Run the EMA on scalar 'students' (1 for the first k steps, else 0):
    the teacher then IS the weight of the first k students."""
    toy = nn.Module()
    toy.student, toy.teacher = nn.Linear(1, 1), nn.Linear(1, 1)
    toy.teacher.requires_grad_(False)
    toy.teacher.weight.zero_()  # the initial teacher contributes 0
    for t in range(T):
        with torch.no_grad():
            toy.student.weight.fill_(1. if t < k else 0.)
        if (t + 1) % hook.interval == 0:
            hook.momentum_update(toy, hook.decay(t))
    return toy.teacher.weight.item()


def test_weight_on_first_iterations_math():
    """Docstring numbers: ReCo's 0.99 after 200 iterations still weighs the
    first 100 by 0.99^100 = 0.366; a horizon of 0.1 (decay 0.95) by
    0.95^100; closed form (k/K) d^(T-K) below the warm-up length K."""
    reco = MeanTeacherHook()
    assert reco.weight_on_first(100, 200) == pytest.approx(0.99 ** 100)
    assert reco.weight_on_first(100, 200) == pytest.approx(0.366, abs=1e-3)
    assert reco.weight_on_first(50, 200) == pytest.approx(
        50 / 100 * 0.99 ** 100)
    hor = MeanTeacherHook(decay_schedule='horizon', horizon=0.1,
                          max_iters=200)
    assert hor.decay(5000) == pytest.approx(0.95)
    assert hor.decay(3) == pytest.approx(0.75)  # ReCo warm-up kept
    assert hor.weight_on_first(100, 200) == pytest.approx(0.95 ** 100)
    for hook in (reco, hor, MeanTeacherHook(decay_schedule='cosine',
                                            max_iters=200, interval=2)):
        for k in (10, 100, 150):
            assert _simulated_weight_on_first(hook, k, 200) == \
                pytest.approx(hook.weight_on_first(k, 200), abs=1e-5)
    assert ema_weight_on_first([0., 0.5, 0.5], 1) == 0.25
    assert ema_weight_on_first([0.5, 0.5], 1) == 0.25  # init weighs 0.25
    with pytest.raises(ValueError, match='k must be'):
        ema_weight_on_first([0.5], 2)


def test_horizon_keeps_paper_schedule_and_needs_max_iters():
    # 40k iterations: the horizon cap (0.99975) is above 0.99 -> ReCo's
    hor = MeanTeacherHook(decay_schedule='horizon', horizon=0.1,
                          max_iters=40000)
    reco = MeanTeacherHook()
    assert all(hor.decay(t) == reco.decay(t) for t in (0, 5, 99, 39999))
    # interval: the window is counted in updates
    h2 = MeanTeacherHook(decay_schedule='horizon', horizon=0.1,
                         max_iters=200, interval=2)
    assert h2.decay(1000) == pytest.approx(0.9)
    with pytest.raises(RuntimeError, match='max_iters'):
        MeanTeacherHook(decay_schedule='horizon', horizon=0.1).decay(5)
    with pytest.raises(ValueError, match='horizon'):
        MeanTeacherHook(decay_schedule='horizon')
    with pytest.raises(ValueError, match='horizon'):
        MeanTeacherHook(horizon=0.1)  # only for 'horizon'
    # before_train reads the runner's max_iters
    hook = MeanTeacherHook(decay_schedule='horizon', horizon=0.05)
    toy = _Toy()
    runner = _runner(toy, 0)
    runner.max_iters = 400
    hook.before_train(runner)
    assert hook.max_iters == 400 and hook.decay(1000) == pytest.approx(0.95)


def test_cosine_matches_mmpretrain_cosine_ema():
    """'cosine' is mmpretrain's CosineEMA (end_momentum=0) in decay
    terms."""
    from mmpretrain.models.utils import CosineEMA
    T = 300
    hub = MessageHub.get_current_instance()
    hub.update_info('max_iters', T)
    ema = CosineEMA(nn.Linear(1, 1), momentum=0.01)
    hook = MeanTeacherHook(max_decay=0.99, decay_schedule='cosine',
                           max_iters=T)
    for t in (1, 100, 150, 250, 299):
        avg, src = torch.zeros(1), torch.ones(1)
        ema.avg_func(avg, src, t)  # avg <- (1 - m) * avg + m * src = m
        assert hook.decay(t) == pytest.approx(1 - avg.item(), abs=1e-7)
    assert hook.decay(0) == pytest.approx(0.99)
    assert hook.decay(T) == pytest.approx(1.)


class _SemiList(torch.utils.data.Dataset):
    """Even indices labelled, odd unlabelled (batch 4 = 2 + 2)."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        b = make_batch(n_lab=1, n_unl=1, seed=i // 2)
        j = 0 if i % 2 == 0 else 1
        return dict(inputs=b['inputs'][j], data_samples=b['data_samples'][j])


class _RecordTeacher(Hook):
    """Keeps the teacher's state as the training loop starts (after
    ``load_or_resume``)."""
    priority = 'LOWEST'
    state = None

    def before_train(self, runner):
        self.state = _state(runner.model.teacher)


def _make_runner(work_dir, max_iters, resume_from=None, record=None):
    from mmengine.runner import Runner
    cfg = semi_cfg(reco=False, mix_mode='none')
    return Runner(
        model=cfg,
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_SemiList(), batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        custom_hooks=[dict(type='MeanTeacherHook')] + (
            [record] if record is not None else []),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
            logger=dict(type='LoggerHook', interval=100)),
        default_scope='mmseg',
        randomness=dict(seed=0),
        log_level='WARNING',
        load_from=resume_from,
        resume=resume_from is not None)


def test_resume_restores_teacher(tmp_path):
    full = _make_runner(tmp_path / 'full', 4)
    full.train()
    ref = _state(full.model.teacher)

    half = _make_runner(tmp_path / 'half', 2)
    half.train()
    ckpt = str(tmp_path / 'half' / 'iter_2.pth')
    assert osp.isfile(ckpt)
    t2, s2 = _state(half.model.teacher), _state(half.model.student)
    # after 2 steps the teacher is a real average, not a copy of the student
    assert not torch.allclose(t2['decode_head.conv_seg.weight'],
                              s2['decode_head.conv_seg.weight'])

    record = _RecordTeacher()
    resumed = _make_runner(tmp_path / 'resumed', 4, resume_from=ckpt,
                           record=record)
    resumed.train()
    for k, v in record.state.items():  # restored, not re-initialised
        assert torch.equal(v, t2[k]), k
    assert resumed.iter == 4
    for k, v in _state(resumed.model.teacher).items():
        assert torch.allclose(v.float(), ref[k].float(), atol=1e-6), k


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world_size, port, out_file):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      OMP_NUM_THREADS='1')
    torch.set_num_threads(1)
    import torch.distributed as dist
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        from mmengine.model import MMDistributedDataParallel
        from mmengine.optim import OptimWrapper
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS

        import mmseg_contrast  # noqa: F401
        init_default_scope('mmseg')
        torch.manual_seed(0)
        model = quiet_init(MODELS.build(semi_cfg(reco=True)))
        ddp = MMDistributedDataParallel(module=model)
        ow = OptimWrapper(torch.optim.SGD(model.student.parameters(),
                                          lr=0.05, momentum=0.9))
        hook = MeanTeacherHook()
        ddp.train()
        for t in range(3):
            torch.manual_seed(100 + rank * 7 + t)  # different mixing per rank
            ddp.train_step(make_batch(seed=10 * rank + t), ow)
            hook.after_train_iter(_runner(ddp, t), t)
        flat_t = torch.cat([v.float().flatten()
                            for v in model.teacher.state_dict().values()])
        flat_s = torch.cat([b.float().flatten()
                            for n, b in model.student.named_buffers()
                            if 'running' in n])
        gathered_t = [torch.zeros_like(flat_t) for _ in range(world_size)]
        gathered_s = [torch.zeros_like(flat_s) for _ in range(world_size)]
        dist.all_gather(gathered_t, flat_t)
        dist.all_gather(gathered_s, flat_s)
        if rank == 0:
            torch.save(dict(teachers=gathered_t, student_stats=gathered_s),
                       out_file)
    finally:
        dist.destroy_process_group()


def test_ddp_teachers_identical(tmp_path):
    import torch.multiprocessing as mp
    out = str(tmp_path / 'ddp.pth')
    # fork: the children reuse the parent's imports (spawn re-imports mmseg)
    mp.start_processes(_ddp_worker, args=(2, _free_port(), out), nprocs=2,
                       join=True, start_method='fork')
    res = torch.load(out)
    t0, t1 = res['teachers']
    assert torch.equal(t0, t1)
    # the ranks really saw different data (their BN statistics differ),
    # so identical teachers are not a triviality
    s0, s1 = res['student_stats']
    assert not torch.allclose(s0, s1)
