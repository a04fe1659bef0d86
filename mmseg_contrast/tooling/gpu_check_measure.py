"""Training-step measurements of ``tools/analysis/gpu_check.py``: a model
built from its config (no pretrained weights), synthetic data of the real
crop size, mmengine's optimizer wrapper (``OptimWrapper`` for fp32,
``AmpOptimWrapper`` fp16 with a dynamic loss scale, as ``tools/train.py
--amp``) and the config's own training hooks, driven like mmengine's
``IterBasedTrainLoop`` (``model.train_step`` between the hooks'
``before_train_iter`` / ``after_train_iter``).

Per run: iterations/s over ``iters`` timed iterations after ``warmup``,
peak ``torch.cuda.max_memory_allocated`` (from the first timed iteration on,
model and optimizer state included) and the host synchronisations of one
iteration, counted with ``torch.cuda.set_sync_debug_mode('warn')`` (each
sync is a warning; its ``file:line`` is the Python line that caused it).
Also runs on CPU (no sync count, no peak memory) for a smoke test.
"""
import collections
import copy
import gc
import logging
import math
import os.path as osp
import time
import types
import warnings

import torch
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import HOOKS, MODELS
from mmseg.structures import SegDataSample

#: hooks of a config that a timing run leaves out: the warm-up would switch
#: the contrast term off (the first 5000 iterations), IterationSeedHook only
#: re-seeds, checkpoint hooks write files
SKIP_HOOKS = ('ContrastWarmupHook', 'IterationSeedHook', 'CheckpointHook',
              'SafeCheckpointHook')


def synthetic_labels(n, size, num_classes, generator, cell=64):
    """``(n, H, W)`` long labels: random classes on a ``cell``-pixel grid
    (every class covers many pixels at stride 8) and an ignored band."""
    h, w = size
    coarse = torch.randint(0, num_classes, (n, 1, h // cell + 1,
                                            w // cell + 1),
                           generator=generator)
    lab = torch.nn.functional.interpolate(
        coarse.float(), scale_factor=cell, mode='nearest')[:, 0, :h, :w]
    lab = lab.long()
    lab[:, :, :max(1, w // 32)] = 255
    return lab


def synthetic_batch(size, num_classes, n_labelled, n_unlabelled=0,
                    device='cpu', seed=0, cell=64):
    """A batch as the dataloader yields it (uint8 BGR ``inputs``,
    ``SegDataSample`` with ``gt_sem_seg``), already on ``device``.
    Unlabelled samples carry no ``gt_sem_seg`` and an ``img_strong`` view
    (what ``PackSemiInputs`` packs); ``SemiDataPreProcessor`` splits them."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    labels = synthetic_labels(n_labelled + n_unlabelled, size, num_classes,
                              g, cell)
    inputs, samples = [], []
    for i in range(n_labelled + n_unlabelled):
        lab = labels[i]
        img = (lab.clamp(max=num_classes) * (200 // num_classes) + 20)
        img = img[None].repeat(3, 1, 1) + torch.randint(
            0, 40, (3, h, w), generator=g)
        img = img.clamp(0, 255).to(torch.uint8)
        ds = SegDataSample()
        ds.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                             pad_shape=(h, w)))
        if i < n_labelled:
            ds.gt_sem_seg = PixelData(data=lab[None].to(device))
        else:
            strong = (255 - img.int()).to(torch.uint8)
            ds.set_field(strong.to(device), 'img_strong')
        inputs.append(img.to(device))
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def build_train_model(model_cfg, device):
    """The model of ``model_cfg`` (pretrained weights already stripped) with
    mmseg's initialisation, on ``device``, in train mode; SyncBN reverted to
    BN as mmengine's Runner does without a process group."""
    model = MODELS.build(copy.deepcopy(model_cfg))
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    model = revert_sync_batchnorm(model)
    return model.to(device).train()


def optim_wrapper_cfg(cfg_optim_wrapper, precision):
    """The config's optimizer wrapper; ``fp16`` as ``tools/train.py --amp``
    (``AmpOptimWrapper``, dynamic loss scale, float16 autocast)."""
    ow = copy.deepcopy(dict(cfg_optim_wrapper))
    if precision == 'fp16':
        ow.update(type='AmpOptimWrapper', loss_scale='dynamic',
                  dtype='float16')
    elif precision != 'fp32':
        raise ValueError(f'precision must be fp32 or fp16, got {precision}')
    return ow


def build_hooks(hook_cfgs):
    """The training hooks of ``custom_hooks`` a timing run keeps."""
    hooks = []
    for cfg in hook_cfgs or []:
        name = str(cfg['type']).split('.')[-1]
        if name not in SKIP_HOOKS:
            hooks.append(HOOKS.build(copy.deepcopy(dict(cfg))))
    return hooks


class _Loop:
    """What the kept hooks read from mmengine's Runner."""

    def __init__(self, model, optim_wrapper, hooks, max_iters=40000):
        self.runner = types.SimpleNamespace(
            model=model, optim_wrapper=optim_wrapper, iter=0,
            max_iters=max_iters, train_dataloader=None,
            message_hub=MessageHub.get_instance('gpu_check'))
        self.hooks = hooks
        self.model = model
        self.optim_wrapper = optim_wrapper
        for hook in hooks:
            hook.before_run(self.runner)
        for hook in hooks:
            hook.before_train(self.runner)

    def step(self, data):
        r = self.runner
        for hook in self.hooks:
            hook.before_train_iter(r, r.iter, data)
        log_vars = self.model.train_step(data, self.optim_wrapper)
        for hook in self.hooks:
            hook.after_train_iter(r, r.iter, data, log_vars)
        r.iter += 1
        return log_vars


def _sync(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def _site(filename, lineno):
    parts = osp.normpath(filename).split(osp.sep)
    for anchor in ('site-packages', 'mmseg_contrast', 'tools'):
        if anchor in parts:
            i = parts.index(anchor)
            parts = parts[i + 1:] if anchor == 'site-packages' else parts[i:]
            break
    return f"{'/'.join(parts[-4:])}:{lineno}"


def count_syncs(step, iters=2):
    """Host syncs per call of ``step`` (mean over ``iters`` calls) and
    ``{file:line: syncs per call}`` (CUDA only)."""
    sites = collections.Counter()
    total = 0
    prev = torch.cuda.get_sync_debug_mode()
    try:
        for _ in range(iters):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                torch.cuda.set_sync_debug_mode('warn')
                try:
                    step()
                finally:
                    torch.cuda.set_sync_debug_mode(prev)
            for w in caught:
                if 'synchroniz' in str(w.message):
                    total += 1
                    sites[_site(w.filename, w.lineno)] += 1
    finally:
        torch.cuda.set_sync_debug_mode(prev)
    return total / iters, {k: v / iters for k, v in sites.most_common()}


def measure(model_cfg, optim_cfg, hook_cfgs, batch, device, precision='fp32',
            iters=20, warmup=3, sync_iters=2, cudnn_benchmark=True, seed=0):
    """One run: build, warm up, time ``iters`` iterations, count syncs.

    Returns ``dict(it_s, ms_per_iter, peak_mib, syncs_per_iter, sync_sites,
    logged_values, final_loss, finite, build_s)``.
    """
    cuda = torch.device(device).type == 'cuda'
    torch.manual_seed(seed)
    if cuda:
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
        torch.cuda.empty_cache()
    t0 = time.perf_counter()
    model = build_train_model(model_cfg, device)
    optim_wrapper = build_optim_wrapper(model,
                                        optim_wrapper_cfg(optim_cfg,
                                                          precision))
    loop = _Loop(model, optim_wrapper, build_hooks(hook_cfgs))
    build_s = time.perf_counter() - t0
    out = {}

    def step():
        out['log_vars'] = loop.step(batch)

    try:
        for _ in range(warmup):
            step()
        _sync(device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        _sync(device)
        elapsed = time.perf_counter() - t0
        peak = (torch.cuda.max_memory_allocated(device) / 2**20
                if cuda else None)
        syncs, sites = (count_syncs(step, sync_iters)
                        if cuda and sync_iters else (None, {}))
        log_vars = out['log_vars']
        loss = log_vars.get('loss')
        if loss is not None:
            loss = float(loss.detach() if hasattr(loss, 'detach') else loss)
        return dict(
            it_s=iters / elapsed, ms_per_iter=1e3 * elapsed / iters,
            peak_mib=peak, syncs_per_iter=syncs, sync_sites=sites,
            logged_values=len(log_vars), final_loss=loss,
            finite=loss is not None and math.isfinite(loss),
            build_s=build_s)
    finally:
        # free the GPU memory before the next run
        loop = optim_wrapper = model = None
        out.clear()
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
