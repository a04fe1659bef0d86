"""PixelMemoryBankHook / ContrastWarmupHook: one process, Runner resume, and
2-process gloo DDP on CPU."""
import os
import tempfile
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.structures import PixelData
from mmseg.registry import HOOKS, MODELS
from mmseg.structures import SegDataSample
from torch.utils.data import Dataset

from mmseg_contrast.engine.hooks import ContrastWarmupHook, PixelMemoryBankHook
from mmseg_contrast.models.decode_heads import PixelContrastMixin

NUM_CLASSES = 3
CHS = (8, 8, 16, 16)
SIZE = 32


@MODELS.register_module(force=True)
class _TinyHookTestBackbone(nn.Module):

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, CHS[0], 3, stride=2, padding=1)
        self.convs = nn.ModuleList([
            nn.Conv2d(CHS[0], CHS[1], 3, stride=2, padding=1),
            nn.Conv2d(CHS[1], CHS[2], 3, padding=1),
            nn.Conv2d(CHS[2], CHS[3], 3, padding=1)
        ])

    def init_weights(self):
        pass

    def forward(self, x):
        x = torch.relu(self.stem(x))
        outs = [x]
        for conv in self.convs:
            x = torch.relu(conv(x))
            outs.append(x)
        return tuple(outs)


def _model_cfg(memory=True, loss_weight=0.1):
    head = dict(
        type='ContrastFCNHead', in_channels=list(CHS), in_index=(0, 1, 2, 3),
        channels=sum(CHS), input_transform='resize_concat', kernel_size=1,
        num_convs=1, concat_input=False, dropout_ratio=-1,
        num_classes=NUM_CLASSES, norm_cfg=dict(type='BN', requires_grad=True),
        proj_channels=16,
        contrast_loss=dict(type='PixelContrastLoss', max_samples=64,
                           max_views=4, loss_weight=loss_weight))
    if memory:
        head['memory_bank'] = dict(type='PixelMemoryBank', memory_size=64,
                                   pixel_per_image=4)
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.],
                               std=[1., 1., 1.], pad_val=0, seg_pad_val=255,
                               size=(SIZE, SIZE)),
        backbone=dict(type='_TinyHookTestBackbone'),
        decode_head=head,
        test_cfg=ConfigDict(mode='whole'))


def _sample(idx, classes=(0, 1)):
    """uint8 image + label: left half classes[0], right half classes[1]."""
    g = torch.Generator().manual_seed(idx)
    lab = torch.full((SIZE, SIZE), classes[0], dtype=torch.long)
    lab[:, SIZE // 2:] = classes[1]
    img = (torch.rand(3, SIZE, SIZE, generator=g) * 100 +
           lab.float() * 50).to(torch.uint8)
    ds = SegDataSample()
    ds.gt_sem_seg = PixelData(data=lab[None])
    ds.set_metainfo(dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE)))
    return dict(inputs=img, data_samples=ds)


class _TinySegDataset(Dataset):

    def __init__(self, n=4):
        self.items = [
            _sample(i, ((i % NUM_CLASSES), (i + 1) % NUM_CLASSES))
            for i in range(n)
        ]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _heads(model):
    m = model.module if hasattr(model, 'module') else model
    return [x for x in m.modules() if isinstance(x, PixelContrastMixin)]


# ---------------------------------------------------------------- unit level
def test_warmup_hook_sets_scale_and_logs_weight_scalar():
    model = MODELS.build(_model_cfg(memory=False, loss_weight=0.1))
    head = _heads(model)[0]
    hub = MessageHub.get_instance('test_warmup_hook_unit')
    runner = SimpleNamespace(model=model, iter=0, message_hub=hub)
    hook = ContrastWarmupHook(warmup_iters=3)
    hook.before_run(runner)
    seen = []
    for it in range(5):
        runner.iter = it
        hook.before_train_iter(runner, it)
        seen.append(head.contrast_weight_scale)
        assert hub.get_scalar('train/contrast_weight').current() == \
            pytest.approx(0.1 * seen[-1])
    assert seen == [0., 0., 0., 1., 1.]
    with pytest.raises(ValueError, match="'loss'"):
        ContrastWarmupHook(log_name='loss_contrast_weight')
    with pytest.raises(ValueError, match='warmup_iters'):
        ContrastWarmupHook(warmup_iters=-1)
    plain = SimpleNamespace(model=nn.Conv2d(1, 1, 1), iter=0,
                            message_hub=hub)
    with pytest.raises(RuntimeError, match='no pixel-contrast head'):
        hook.before_run(plain)


def test_memory_bank_hook_enqueues_stashed_keys():
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg(memory=True))
    model.train()
    head = _heads(model)[0]
    runner = SimpleNamespace(model=model)
    hook = PixelMemoryBankHook()
    hook.before_run(runner)
    batch = model.data_preprocessor(
        dict(zip(('inputs', 'data_samples'),
                 zip(*[(s['inputs'], s['data_samples'])
                       for s in (_sample(0), _sample(1, (2, 2)))]))),
        training=True)
    model.loss(batch['inputs'], batch['data_samples'])
    keys, labels = head._pending_keys
    hook.after_train_iter(runner, 0)
    bank = head.memory_bank
    assert head._pending_keys is None
    assert int(bank.num_updates) == 1
    # image 0 has classes 0 and 1, image 1 only class 2 -> one segment each
    assert bank.segment_count.tolist() == [1, 1, 1]
    assert bank.pixel_count.tolist() == [4, 4, 4]
    # the class-2 segment is the normalised mean of image 1's keys
    expect = torch.nn.functional.normalize(keys[1].mean((1, 2)), dim=0)
    torch.testing.assert_close(bank.segment_queue[2, 0], expect)
    # a step whose keys were never stashed is an error, not a silent skip
    with pytest.raises(RuntimeError, match='kept no keys'):
        hook.after_train_iter(runner, 1)
    with pytest.raises(RuntimeError, match='memory_bank'):
        hook.before_run(SimpleNamespace(
            model=MODELS.build(_model_cfg(memory=False))))


def _loss_step(model):
    batch = model.data_preprocessor(
        dict(zip(('inputs', 'data_samples'),
                 zip(*[(s['inputs'], s['data_samples'])
                       for s in (_sample(0), _sample(1, (2, 2)))]))),
        training=True)
    return model.loss(batch['inputs'], batch['data_samples'])


def test_memory_bank_hook_logs_dropped_nonfinite_keys():
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg(memory=True))
    model.train()
    head = _heads(model)[0]
    hub = MessageHub.get_instance('test_bank_hook_nonfinite')
    runner = SimpleNamespace(model=model, message_hub=hub, optim_wrapper=None)
    hook = PixelMemoryBankHook()
    hook.before_run(runner)
    _loss_step(model)
    keys, labels = head._pending_keys
    keys[0, :, :2, :] = float('nan')  # 2 rows of image 0 (valid labels)
    hook.before_train_iter(runner, 0)
    hook.after_train_iter(runner, 0)
    n_bad = 2 * keys.shape[-1]
    assert hub.get_scalar('train/bank_nonfinite_keys').current() == n_bad
    bank = head.memory_bank
    assert int(bank.num_updates) == 1
    assert torch.isfinite(bank.pixel_queue).all()
    assert torch.isfinite(bank.segment_queue).all()
    # the bank stays usable: the next memory-mode loss is finite
    losses = _loss_step(model)
    assert torch.isfinite(losses['decode.loss_contrast'])
    # no AMP: no skipped-step scalar
    assert 'train/bank_skipped_step' not in hub.log_scalars


def test_memory_bank_hook_skips_steps_the_amp_scaler_skipped():
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg(memory=True))
    model.train()
    head = _heads(model)[0]
    bank = head.memory_bank
    w = nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler = torch.amp.GradScaler('cpu', init_scale=2.**10)
    hub = MessageHub.get_instance('test_bank_hook_amp')
    runner = SimpleNamespace(model=model, message_hub=hub,
                             optim_wrapper=SimpleNamespace(loss_scaler=scaler))
    hook = PixelMemoryBankHook()
    hook.before_run(runner)

    def step(grad_value):
        hook.before_train_iter(runner, 0)
        _loss_step(model)  # stashes keys
        opt.zero_grad()
        scaler.scale((w * grad_value).sum()).backward()
        scaler.step(opt)
        scaler.update()
        hook.after_train_iter(runner, 0)
        return hub.get_scalar('train/bank_skipped_step').current()

    assert step(float('inf')) == 1.  # overflow: step skipped, scale halved
    assert scaler.get_scale() == 2.**9
    assert torch.equal(w.detach(), torch.ones(2))
    assert int(bank.num_updates) == 0 and int(bank.pixel_count.sum()) == 0
    assert head._pending_keys is None  # dropped, not carried over
    assert step(1.) == 0.  # a real step enqueues
    assert int(bank.num_updates) == 1 and int(bank.pixel_count.sum()) > 0


# --------------------------------------------------------------- Runner level
@HOOKS.register_module(force=True)
class _RecordContrastHook(Hook):
    """Records, per iteration, bank updates seen before and after the other
    hooks' after_train_iter, the contrast scale and the logged loss."""
    priority = 'NORMAL'

    def __init__(self, sink_name):
        self.sink = _SINKS.setdefault(sink_name, [])

    def before_train(self, runner):
        head = _heads(runner.model)[0]
        self.sink.append(('start', {
            k: v.clone()
            for k, v in head.memory_bank.state_dict().items()
        }))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        head = _heads(runner.model)[0]
        self.sink.append(('iter', runner.iter, head.contrast_weight_scale,
                          float(outputs['decode.loss_contrast'].detach()),
                          int(head.memory_bank.num_updates)))


_SINKS = {}


class _NoisySegDataset(_TinySegDataset):
    """Draws from the global generators while loading (num_workers=0: in
    the main process), like a random augmentation would."""

    def __getitem__(self, i):
        item = dict(self.items[i])
        noise = torch.randint(0, 20, item['inputs'].shape, dtype=torch.uint8)
        item['inputs'] = item['inputs'] + noise
        return item


def _runner(work_dir, max_iters, name, warmup, resume=False, seeded=False):
    from mmengine.runner import Runner
    return Runner(
        model=_model_cfg(memory=True),
        work_dir=work_dir,
        experiment_name=name,
        train_dataloader=dict(
            dataset=_NoisySegDataset(4) if seeded else _TinySegDataset(4),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[
            # VERY_HIGH: runs before the bank hook's after_train_iter
            dict(type='_RecordContrastHook', sink_name=name + '_pre',
                 priority='VERY_HIGH'),
            dict(type='PixelMemoryBankHook'),
            dict(type='ContrastWarmupHook', warmup_iters=warmup),
            dict(type='_RecordContrastHook', sink_name=name,
                 priority='VERY_LOW'),
        ] + ([dict(type='IterationSeedHook')] if seeded else []),
        default_scope='mmseg',
        randomness=dict(seed=0),
        resume=resume,
        log_level='ERROR')


def test_runner_warmup_and_enqueue_after_optimizer_step(tmp_path):
    runner = _runner(str(tmp_path), 4, 'hooks_warmup', warmup=2)
    runner.train()
    rec = [r for r in _SINKS['hooks_warmup'] if r[0] == 'iter']
    pre = [r for r in _SINKS['hooks_warmup_pre'] if r[0] == 'iter']
    assert [r[2] for r in rec] == [0., 0., 1., 1.]
    assert [r[3] == 0. for r in rec] == [True, True, False, False]
    # the bank is untouched by train_step (forward/backward/optimizer step)
    # and updated once per iteration by the hook afterwards
    assert [r[4] for r in pre] == [0, 1, 2, 3]
    assert [r[4] for r in rec] == [1, 2, 3, 4]
    hist = runner.message_hub.get_scalar('train/contrast_weight')
    assert list(hist.data[0]) == pytest.approx([0., 0., 0.1, 0.1])


def test_runner_resume_restores_bank_and_pointers(tmp_path):
    # warm-up longer than the runs: the contrast loss (random sampling) is
    # never computed, so training is deterministic and the resumed run must
    # match an uninterrupted one exactly; the bank is filled all along
    straight = _runner(str(tmp_path / 'straight'), 4, 'hooks_straight', 100)
    straight.train()
    bank_straight = _heads(straight.model)[0].memory_bank.state_dict()

    first = _runner(str(tmp_path / 'resumed'), 2, 'hooks_first', 100)
    first.train()
    bank_first = {
        k: v.clone()
        for k, v in _heads(first.model)[0].memory_bank.state_dict().items()
    }
    assert int(bank_first['num_updates']) == 2
    assert bank_first['pixel_ptr'].sum() > 0

    second = _runner(str(tmp_path / 'resumed'), 4, 'hooks_second', 100,
                     resume=True)
    second.train()
    start = [r for r in _SINKS['hooks_second'] if r[0] == 'start'][0][1]
    for k, v in bank_first.items():
        assert torch.equal(start[k], v), k
    bank_second = _heads(second.model)[0].memory_bank.state_dict()
    assert int(bank_second['num_updates']) == 4
    for k, v in bank_straight.items():
        torch.testing.assert_close(bank_second[k], v, rtol=1e-5, atol=1e-6)


def test_runner_resume_is_bit_exact_with_iteration_seed_hook(tmp_path):
    # contrast term on from iteration 1 (random anchor sampling against the
    # bank, random data noise): with IterationSeedHook, 2 iterations +
    # resume + 2 equal 4 uninterrupted ones exactly
    straight = _runner(str(tmp_path / 'straight'), 4, 'seed_straight', 1,
                       seeded=True)
    straight.train()
    first = _runner(str(tmp_path / 'resumed'), 2, 'seed_first', 1,
                    seeded=True)
    first.train()
    second = _runner(str(tmp_path / 'resumed'), 4, 'seed_second', 1,
                     resume=True, seeded=True)
    second.train()
    rec_a = [r for r in _SINKS['seed_straight'] if r[0] == 'iter']
    rec_b = [r for r in _SINKS['seed_first'] + _SINKS['seed_second']
             if r[0] == 'iter']
    assert [r[1] for r in rec_b] == [0, 1, 2, 3]
    assert all(r[3] > 0 for r in rec_a[1:])  # contrast loss computed
    assert rec_a == rec_b  # identical contrast losses at every iteration
    for a, b in ((straight.model, second.model), ):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    # without the hook the resumed contrast loss differs (the issue)
    plain = _runner(str(tmp_path / 'plain'), 2, 'plain_first', 1)
    plain.train()
    plain2 = _runner(str(tmp_path / 'plain'), 4, 'plain_second', 1,
                     resume=True)
    plain2.train()
    loose = _runner(str(tmp_path / 'loose'), 4, 'plain_straight', 1)
    loose.train()
    la = [r[3] for r in _SINKS['plain_straight'] if r[0] == 'iter']
    lb = [r[3] for r in _SINKS['plain_first'] + _SINKS['plain_second']
          if r[0] == 'iter']
    assert la[:2] == lb[:2] and la[2:] != lb[2:]


# ------------------------------------------------------------------ DDP level
def _ddp_worker(rank, world_size, init_file, out_dir):
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(1)
    torch_dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world_size)
    try:
        from mmengine.model import MMDistributedDataParallel
        from mmengine.optim import OptimWrapper
        from mmengine.registry import init_default_scope

        import mmseg_contrast  # noqa: F401
        init_default_scope('mmseg')
        # the test module is imported fresh in the child: register helpers
        torch.manual_seed(0)  # identical weights on both ranks
        model = MODELS.build(_model_cfg(memory=True))
        model.train()
        # torch's default broadcast_buffers=True: the hook must exclude the
        # bank from the per-forward broadcast
        ddp = MMDistributedDataParallel(module=model, broadcast_buffers=True)
        runner = SimpleNamespace(
            model=ddp, iter=0,
            message_hub=MessageHub.get_instance(f'ddp_hooks_{rank}'))
        bank_hook = PixelMemoryBankHook()
        warm_hook = ContrastWarmupHook(warmup_iters=2)
        bank_hook.before_run(runner)
        warm_hook.before_run(runner)
        optim = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.05))
        weights = []
        for it in range(4):
            runner.iter = it
            # rank-specific data: rank 0 sees classes 0/1, rank 1 class 2/0
            classes = ((0, 1), (1, 0)) if rank == 0 else ((2, 2), (2, 0))
            samples = [_sample(10 * rank + 2 * it + j, classes[j])
                       for j in range(2)]
            data = dict(inputs=[s['inputs'] for s in samples],
                        data_samples=[s['data_samples'] for s in samples])
            warm_hook.before_train_iter(runner, it)
            weights.append(_heads(ddp)[0].contrast_weight)
            ddp.train_step(data, optim)
            bank_hook.after_train_iter(runner, it)
        bank = _heads(ddp)[0].memory_bank
        state = {k: v.clone() for k, v in bank.state_dict().items()}
        state['_weights'] = torch.tensor(weights)
        state['_broadcast'] = sorted(ddp.named_module_buffers)
        torch.save(state, os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        torch_dist.destroy_process_group()


def test_ddp_two_process_identical_banks_and_warmup_weight():
    with tempfile.TemporaryDirectory() as tmp:
        init_file = os.path.join(tmp, 'init')
        mp.spawn(_ddp_worker, args=(2, init_file, tmp), nprocs=2, join=True)
        s0 = torch.load(os.path.join(tmp, 'rank0.pth'), weights_only=False)
        s1 = torch.load(os.path.join(tmp, 'rank1.pth'), weights_only=False)
    # warm-up weight identical on both ranks, and applied (0 then 0.1)
    assert torch.equal(s0['_weights'], s1['_weights'])
    assert s0['_weights'].tolist() == pytest.approx([0., 0., 0.1, 0.1])
    # bank buffers not in DDP's broadcast list (BN stats still are)
    for s in (s0, s1):
        assert not any('memory_bank' in n for n in s['_broadcast'])
        assert any('running_mean' in n for n in s['_broadcast'])
    # identical banks on both ranks
    for k in ('pixel_queue', 'segment_queue', 'pixel_ptr', 'segment_ptr',
              'pixel_count', 'segment_count', 'num_updates'):
        assert torch.equal(s0[k], s1[k]), k
    # ... holding both ranks' data: 4 steps x 4 images (2 per rank) gathered.
    # (image, class) occurrences per step: class 0: 3, class 1: 2, class 2: 2
    assert s0['num_updates'].item() == 4
    assert s0['segment_count'].tolist() == [12, 8, 8]
    assert s0['pixel_count'].tolist() == [48, 32, 32]
