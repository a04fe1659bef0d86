"""CheckedDenseCL: mmpretrain's DenseCL training step on CPU through the
SegImagesDataset wrapper (real images), queue behaviour and the up-front
shape/queue errors."""
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

import mmseg_contrast  # noqa: F401
from mmseg_contrast.selfsup import DenseCLConfigError, check_densecl_queue


def _cfg(**kw):
    cfg = dict(
        type='CheckedDenseCL',
        queue_len=8,
        feat_dim=4,
        momentum=0.001,
        backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
        neck=dict(
            type='DenseCLNeck', in_channels=512, hid_channels=8,
            out_channels=4, num_grid=None),
        head=dict(
            type='ContrastiveHead',
            loss=dict(type='CrossEntropyLoss'),
            temperature=0.2))
    for k, v in kw.items():
        if isinstance(v, dict) and v.get('_delete_'):
            cfg[k] = {n: x for n, x in v.items() if n != '_delete_'}
        elif isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = dict(cfg[k], **v)
        else:
            cfg[k] = v
    return cfg


def _build(**kw):
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(_cfg(**kw))


def _two_views(n, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, size, size, generator=g) for _ in range(2)]


def _voc_dataset(root, size=64):
    from mmpretrain.registry import DATASETS
    view = [dict(type='RandomResizedCrop', scale=size,
                 crop_ratio_range=(0.2, 1.), backend='pillow'),
            dict(type='RandomFlip', prob=0.5)]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return DATASETS.build(
            dict(type='SegImagesDataset',
                 seg_dataset=dict(
                     type='PascalVOCDataset', data_root=root,
                     data_prefix=dict(img_path='JPEGImages',
                                      seg_map_path='SegmentationClass'),
                     ann_file='ImageSets/Segmentation/train.txt'),
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='MultiView', num_views=2,
                                transforms=[view]),
                           dict(type='PackInputs')]))


def test_train_step_real_images(voc_mini_root):
    torch.manual_seed(0)
    dataset = _voc_dataset(voc_mini_root)
    batch = default_collate([dataset[i] for i in range(2)])
    model = _build()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        log = model.train_step(batch, optim)
    assert set(log) == {'loss', 'loss_single', 'loss_dense'}
    assert all(torch.isfinite(v) for v in log.values())
    after = model.state_dict()
    # query encoder trained, EMA key encoder moved, queues advanced by 2
    assert not torch.equal(before['backbone.conv1.weight'],
                           after['backbone.conv1.weight'])
    assert int(model.queue_ptr) == 2 and int(model.queue2_ptr) == 2
    assert not torch.equal(before['queue'][:, :2], after['queue'][:, :2])
    assert torch.equal(before['queue'][:, 2:], after['queue'][:, 2:])
    assert torch.allclose(after['queue'][:, :2].norm(dim=0), torch.ones(2))


def test_queue_pointer_and_enqueue():
    model = _build()
    keys = [torch.nn.functional.normalize(torch.randn(4, 4), dim=1)
            for _ in range(3)]
    model._dequeue_and_enqueue(keys[0])
    assert int(model.queue_ptr) == 4
    assert torch.equal(model.queue[:, :4], keys[0].t())
    model._dequeue_and_enqueue(keys[1])
    assert int(model.queue_ptr) == 0  # wrapped: queue_len 8
    assert torch.equal(model.queue[:, 4:], keys[1].t())
    model._dequeue_and_enqueue(keys[2])  # FIFO: overwrites the oldest
    assert int(model.queue_ptr) == 4
    assert torch.equal(model.queue[:, :4], keys[2].t())
    model._dequeue_and_enqueue2(keys[0])
    assert int(model.queue2_ptr) == 4 and int(model.queue_ptr) == 4
    assert torch.equal(model.queue2[:, :4], keys[0].t())


def test_queue_batch_error_before_any_update():
    model = _build()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DenseCLConfigError,
                       match='queue_len=8 must be a multiple of the global '
                       r'batch size 3 .*queue_len=6 or 9'):
        model.loss(_two_views(3), None)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k  # nothing ran
    with pytest.raises(DenseCLConfigError, match='global batch size 48 '
                       r'\(= 16 images per process x 3 processes\)'):
        check_densecl_queue(64, 16, 3)
    check_densecl_queue(64, 16, 4)  # fine


def test_num_grid_mismatch_is_a_clear_error():
    # 64x64 input -> 2x2 ResNet C5 grid, neck pools to 3x3: mmpretrain crashes
    model = _build(neck=dict(num_grid=3))
    with pytest.raises(DenseCLConfigError,
                       match=r'num_grid=3 .* 2x2 = 4 positions'):
        model.loss(_two_views(4), None)
    ok = _build(neck=dict(num_grid=2))  # matches the backbone grid
    losses = ok.loss(_two_views(4), None)
    assert torch.isfinite(losses['loss_dense'])
    assert ok._shapes_checked


@pytest.mark.parametrize('kw, msg', [
    (dict(momentum=0.999), 'MoCo convention'),
    (dict(backbone=dict(out_indices=(2, 3))), 'exactly one feature map'),
    (dict(feat_dim=8), 'must equal feat_dim=8'),
    (dict(queue_len=0), 'positive int'),
])
def test_static_errors(kw, msg):
    with pytest.raises(DenseCLConfigError, match=msg):
        _build(**kw)


def test_backbone_output_errors():
    model = _build(neck=dict(in_channels=256))
    with pytest.raises(DenseCLConfigError, match='512 channels but '
                       'neck.in_channels=256'):
        model.loss(_two_views(4), None)
    model = _build()
    with pytest.raises(DenseCLConfigError, match='two augmented views'):
        model.loss(torch.zeros(4, 3, 64, 64), None)
    # mmseg's MobileNetV2 returns a bare tensor for one out_index
    model = _build(
        backbone=dict(_delete_=True, type='mmseg.MobileNetV2',
                      out_indices=(6, )),
        neck=dict(in_channels=320))
    with pytest.raises(DenseCLConfigError, match='returned a Tensor'):
        model.loss(_two_views(4), None)


def _ddp_worker(rank, world_size, port, out_dir):
    import json
    import os

    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    result = {}
    try:
        torch.manual_seed(rank)
        bad = _build(queue_len=6)  # global batch 2 x 2 = 4
        try:
            bad.loss(_two_views(2, seed=rank), None)
        except DenseCLConfigError as e:
            result['error'] = str(e)
        torch.manual_seed(0)  # same init on both ranks
        model = _build(queue_len=8)
        model.loss(_two_views(2, seed=10 + rank), None)
        gathered = [torch.zeros_like(model.queue) for _ in range(world_size)]
        dist.all_gather(gathered, model.queue)
        result['ptr'] = int(model.queue_ptr)
        result['ptr2'] = int(model.queue2_ptr)
        result['same_queue'] = bool(torch.equal(gathered[0], gathered[1]))
    finally:
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(result, f)
        dist.destroy_process_group()


def test_ddp_global_batch_queue(tmp_path):
    """2-process gloo: keys of both ranks are enqueued (pointer += global
    batch), and the queue check uses the global batch size."""
    import json
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    # fork: the children reuse the parent's imports (spawn re-imports the
    # whole OpenMMLab stack in each child)
    mp.start_processes(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2,
                       join=True, start_method='fork')
    for rank in range(2):
        with open(tmp_path / f'rank{rank}.json') as f:
            res = json.load(f)
        assert 'global batch size 4 (= 2 images per process x 2 processes)' \
            in res['error']
        assert res['ptr'] == 4 and res['ptr2'] == 4
        assert res['same_queue']


def test_seg_mobilenetv2_tuple_output_and_mmseg_keys():
    import torch
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    from mmseg.models.backbones import MobileNetV2
    cfg = dict(type='SegMobileNetV2', strides=(1, 2, 2, 1, 1, 1, 1),
               dilations=(1, 1, 1, 2, 2, 4, 4), out_indices=(6, ))
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        bb = PRETRAIN_MODELS.build(cfg)
    out = bb(torch.zeros(1, 3, 64, 64))
    assert isinstance(out, tuple) and len(out) == 1
    assert out[0].shape == (1, 320, 8, 8)
    ref = MobileNetV2(strides=(1, 2, 2, 1, 1, 1, 1),
                      dilations=(1, 1, 1, 2, 2, 4, 4), out_indices=(6, ))
    assert list(bb.state_dict()) == list(ref.state_dict())
    assert torch.is_tensor(ref(torch.zeros(1, 3, 64, 64)))
