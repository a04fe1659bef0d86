"""Benchmark: vectorised ``PixelContrastLoss`` vs a loop-style port of the
ContrastiveSeg reference (``tfzhou/ContrastiveSeg`` @287e5d3,
``lib/loss/loss_contrast.py`` and ``lib/loss/loss_contrast_mem.py``),
forward + backward.

Sizes follow the issue (Cityscapes / HRNet-W48): B=2, D=256, 128x256
embedding (stride 4 of a 512x1024 crop), 19 classes, max_samples=1024,
max_views=100 in-batch; memory mode with a 19 x 5000 x 2 bank (segment +
pixel queues) and the reference memory config (max_views=1,
tau = tau_b = 0.07).

Measurements:

* time: median wall time of forward + backward over ``--repeats`` runs
  after one warm-up run (``torch.cuda.synchronize`` on GPU);
* peak memory: on GPU ``torch.cuda.max_memory_allocated`` minus the memory
  allocated before the step; on CPU the peak of the running sum of the
  torch CPU allocator's allocation/free events recorded by
  ``torch.profiler`` (``profile_memory=True``) during one forward +
  backward, i.e. the peak of tensor memory allocated by the step (inputs
  and the bank, allocated before, are not counted for either side). It is
  not process RSS (the allocator may cache freed blocks).
* agreement: both implementations on inputs where sampling cannot change
  the result (embeddings constant per (image, class)), and both contrast
  functions on the same sampled views.

Targets (issue 3): >= 10x faster in-batch, <= 1/3 the peak memory in
memory mode.

    python tools/analysis/benchmark_contrast.py                 # CPU
    python tools/analysis/benchmark_contrast.py --device cuda
    python tools/analysis/benchmark_contrast.py --mem-views 100  # heavy
    python tools/analysis/benchmark_contrast.py --train-step --skip-loss

``--train-step`` also times one training step (data preprocessor, forward,
losses, backward, SGD step) of the demo model with the contrast head vs the
plain head on a synthetic batch (issue target: <= 10 % overhead).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import mmseg_contrast  # noqa: F401  (registers PixelContrastLoss)
from mmseg_contrast.models.losses.pixel_contrast_loss import (
    PixelContrastLoss,
    in_batch_contrast,
    sample_anchors,
)
from mmseg_contrast.models.utils.memory_bank import PixelMemoryBank


# --------------------------------------------------------------------------
# REFERENCE PORT (loop style, for timing / comparison only; do not use).
# Transcribed from tfzhou/ContrastiveSeg lib/loss/loss_contrast.py
# (_hard_anchor_sampling, _contrastive, forward) and loss_contrast_mem.py
# (_sample_negative, _contrastive with a queue, the cat of the two queues in
# ContrastCELoss). Only change: ``.cuda()`` -> ``device=`` so it runs on
# CPU too. ``skip_class0`` / ``logits_mask`` switch two reference memory
# bugs off for the numerical agreement check (they are on by default).
# --------------------------------------------------------------------------
class ReferencePixelContrastLoss:

    def __init__(self, temperature=0.1, base_temperature=0.07,
                 max_samples=1024, max_views=100, ignore_label=255,
                 skip_class0=True, logits_mask=True):
        self.temperature = temperature
        self.base_temperature = base_temperature
        self.ignore_label = ignore_label
        self.max_samples = max_samples
        self.max_views = max_views
        self.skip_class0 = skip_class0
        self.use_logits_mask = logits_mask

    def _hard_anchor_sampling(self, X, y_hat, y):
        batch_size, feat_dim = X.shape[0], X.shape[-1]
        device = X.device
        classes = []
        total_classes = 0
        for ii in range(batch_size):
            this_y = y_hat[ii]
            this_classes = torch.unique(this_y)
            this_classes = [x for x in this_classes if x != self.ignore_label]
            this_classes = [
                x for x in this_classes
                if (this_y == x).nonzero().shape[0] > self.max_views
            ]
            classes.append(this_classes)
            total_classes += len(this_classes)
        if total_classes == 0:
            return None, None
        n_view = self.max_samples // total_classes
        n_view = min(n_view, self.max_views)
        X_ = torch.zeros((total_classes, n_view, feat_dim),
                         dtype=torch.float, device=device)
        y_ = torch.zeros(total_classes, dtype=torch.float, device=device)
        X_ptr = 0
        for ii in range(batch_size):
            this_y_hat = y_hat[ii]
            this_y = y[ii]
            this_classes = classes[ii]
            for cls_id in this_classes:
                hard_indices = ((this_y_hat == cls_id) &
                                (this_y != cls_id)).nonzero()
                easy_indices = ((this_y_hat == cls_id) &
                                (this_y == cls_id)).nonzero()
                num_hard = hard_indices.shape[0]
                num_easy = easy_indices.shape[0]
                if num_hard >= n_view / 2 and num_easy >= n_view / 2:
                    num_hard_keep = n_view // 2
                    num_easy_keep = n_view - num_hard_keep
                elif num_hard >= n_view / 2:
                    num_easy_keep = num_easy
                    num_hard_keep = n_view - num_easy_keep
                elif num_easy >= n_view / 2:
                    num_hard_keep = num_hard
                    num_easy_keep = n_view - num_hard_keep
                else:
                    raise Exception('this should never be touched!')
                perm = torch.randperm(num_hard)
                hard_indices = hard_indices[perm[:num_hard_keep]]
                perm = torch.randperm(num_easy)
                easy_indices = easy_indices[perm[:num_easy_keep]]
                indices = torch.cat((hard_indices, easy_indices), dim=0)
                X_[X_ptr, :, :] = X[ii, indices, :].squeeze(1)
                y_[X_ptr] = cls_id
                X_ptr += 1
        return X_, y_

    def _contrastive(self, feats_, labels_):
        device = feats_.device
        anchor_num, n_view = feats_.shape[0], feats_.shape[1]
        labels_ = labels_.contiguous().view(-1, 1)
        mask = torch.eq(labels_, torch.transpose(labels_, 0, 1)).float()
        contrast_count = n_view
        contrast_feature = torch.cat(torch.unbind(feats_, dim=1), dim=0)
        anchor_feature = contrast_feature
        anchor_count = contrast_count
        anchor_dot_contrast = torch.div(
            torch.matmul(anchor_feature,
                         torch.transpose(contrast_feature, 0, 1)),
            self.temperature)
        logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
        logits = anchor_dot_contrast - logits_max.detach()
        mask = mask.repeat(anchor_count, contrast_count)
        neg_mask = 1 - mask
        logits_mask = torch.ones_like(mask).scatter_(
            1,
            torch.arange(anchor_num * anchor_count,
                         device=device).view(-1, 1), 0)
        mask = mask * logits_mask
        neg_logits = torch.exp(logits) * neg_mask
        neg_logits = neg_logits.sum(1, keepdim=True)
        exp_logits = torch.exp(logits)
        log_prob = logits - torch.log(exp_logits + neg_logits)
        mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
        loss = -(self.temperature /
                 self.base_temperature) * mean_log_prob_pos
        return loss.mean()

    # ---- memory variant (loss_contrast_mem.py)
    def _sample_negative(self, Q):
        class_num, cache_size, feat_size = Q.shape
        X_ = torch.zeros((class_num * cache_size, feat_size),
                         device=Q.device).float()
        y_ = torch.zeros((class_num * cache_size, 1), device=Q.device).float()
        sample_ptr = 0
        for ii in range(class_num):
            if ii == 0 and self.skip_class0:
                continue
            this_q = Q[ii, :cache_size, :]
            X_[sample_ptr:sample_ptr + cache_size, ...] = this_q
            y_[sample_ptr:sample_ptr + cache_size, ...] = ii
            sample_ptr += cache_size
        return X_, y_

    def _contrastive_mem(self, X_anchor, y_anchor, queue):
        device = X_anchor.device
        anchor_num, n_view = X_anchor.shape[0], X_anchor.shape[1]
        y_anchor = y_anchor.contiguous().view(-1, 1)
        anchor_count = n_view
        anchor_feature = torch.cat(torch.unbind(X_anchor, dim=1), dim=0)
        X_contrast, y_contrast = self._sample_negative(queue)
        y_contrast = y_contrast.contiguous().view(-1, 1)
        contrast_count = 1
        contrast_feature = X_contrast
        mask = torch.eq(y_anchor, y_contrast.T).float()
        anchor_dot_contrast = torch.div(
            torch.matmul(anchor_feature, contrast_feature.T),
            self.temperature)
        logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
        logits = anchor_dot_contrast - logits_max.detach()
        mask = mask.repeat(anchor_count, contrast_count)
        neg_mask = 1 - mask
        if self.use_logits_mask:
            logits_mask = torch.ones_like(mask).scatter_(
                1,
                torch.arange(anchor_num * anchor_count,
                             device=device).view(-1, 1), 0)
            mask = mask * logits_mask
        neg_logits = torch.exp(logits) * neg_mask
        neg_logits = neg_logits.sum(1, keepdim=True)
        exp_logits = torch.exp(logits)
        log_prob = logits - torch.log(exp_logits + neg_logits)
        mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
        loss = -(self.temperature /
                 self.base_temperature) * mean_log_prob_pos
        return loss.mean()

    def __call__(self, feats, labels, predict, queue=None):
        labels = labels.unsqueeze(1).float().clone()
        labels = F.interpolate(
            labels, (feats.shape[2], feats.shape[3]), mode='nearest')
        labels = labels.squeeze(1).long()
        assert labels.shape[-1] == feats.shape[-1], \
            '{} {}'.format(labels.shape, feats.shape)
        batch_size = feats.shape[0]
        labels = labels.contiguous().view(batch_size, -1)
        predict = predict.contiguous().view(batch_size, -1)
        feats = feats.permute(0, 2, 3, 1)
        feats = feats.contiguous().view(feats.shape[0], -1, feats.shape[-1])
        feats_, labels_ = self._hard_anchor_sampling(feats, labels, predict)
        if queue is not None:
            return self._contrastive_mem(feats_, labels_, queue)
        return self._contrastive(feats_, labels_)


# --------------------------------------------------------------------------
def make_inputs(B, D, h, w, C, stride, device, seed=0, constant=False):
    """Cityscapes-like blocky labels (random classes on a coarse grid),
    a prediction that is wrong on ~30 % of the pixels, unit embeddings."""
    g = torch.Generator().manual_seed(seed)
    H, W = h * stride, w * stride
    coarse = torch.randint(0, C, (B, 1, 8, 16), generator=g).float()
    label = F.interpolate(coarse, size=(H, W), mode='nearest')[:, 0].long()
    label[:, :H // 16] = 255  # some ignore (e.g. ego vehicle)
    small = F.interpolate(label[:, None].float(), size=(h, w),
                          mode='nearest')[:, 0].long()
    noise = torch.randint(0, C, (B, h, w), generator=g)
    flip = torch.rand(B, h, w, generator=g) < 0.3
    pred = torch.where(flip | (small == 255), noise, small)
    if constant:
        proto = F.normalize(torch.randn(B, C + 1, D, generator=g), dim=-1)
        idx = small.clamp(max=C)
        embed = proto[torch.arange(B)[:, None, None], idx].permute(0, 3, 1, 2)
    else:
        embed = F.normalize(torch.randn(B, D, h, w, generator=g), dim=1)
    return (embed.contiguous().to(device), label.to(device), pred.to(device))


def filled_bank(C, M, D, device, seed=0):
    bank = PixelMemoryBank(num_classes=C, feat_dim=D, memory_size=M)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bank.segment_queue.copy_(
            F.normalize(torch.randn(C, M, D, generator=g), dim=-1))
        bank.pixel_queue.copy_(
            F.normalize(torch.randn(C, M, D, generator=g), dim=-1))
        bank.segment_count.fill_(M)
        bank.pixel_count.fill_(M)
    return bank.to(device)


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def time_step(fn, device, repeats):
    fn()  # warm-up
    return statistics.median(_timed(fn, device) for _ in range(repeats))


def peak_memory(fn, device):
    """Peak bytes of tensor memory allocated during one call of fn."""
    if device.type == 'cuda':
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        fn()
    events = [
        e for e in prof.profiler.kineto_results.events()
        if e.name() == '[memory]'
    ]
    cur = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        cur += e.nbytes()
        peak = max(peak, cur)
    return peak


def step_fn(loss_fn, embed, label, pred, queue=None):
    def fn():
        e = embed.detach().requires_grad_()
        if queue is None:
            value = loss_fn(e, label, pred)
        else:
            value = loss_fn(e, label, pred, queue=queue)
        value.backward()
        return value
    return fn


def train_step_overhead(args, device):
    """Median time of one training step (forward + loss + backward + SGD
    step) of the contrast config vs the plain config, synthetic batch."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    init_default_scope('mmseg')

    def build(path):
        cfg = Config.fromfile(path)
        model = MODELS.build(cfg.model)  # no init_weights: timing only
        return model.to(device).train(), cfg

    plain, cfg = build(args.plain_config)
    contrast, _ = build(args.contrast_config)
    num_classes = cfg.model.decode_head.num_classes
    size = tuple(cfg.get('crop_size', (512, 512)))
    B = args.train_batch
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(B, 3, *size, generator=g) * 255
    coarse = torch.randint(0, num_classes, (B, 1, 5, 5), generator=g)
    labels = F.interpolate(coarse.float(), size=size,
                           mode='nearest')[:, 0].long()
    samples = []
    for i in range(B):
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=labels[i:i + 1])
        ds.set_metainfo(dict(img_shape=size, ori_shape=size, pad_shape=size))
        samples.append(ds)
    data = dict(inputs=list(imgs.to(torch.uint8)), data_samples=samples)

    def step_of(model):
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

        def fn():
            batch = model.data_preprocessor(data, True)
            losses = model(**batch, mode='loss')
            total, _ = model.parse_losses(losses)
            opt.zero_grad()
            total.backward()
            opt.step()
        return fn

    # interleaved so that load drift on a shared machine hits both alike
    f_plain, f_con = step_of(plain), step_of(contrast)
    f_plain(), f_con()  # warm-up
    tp, tc = [], []
    for _ in range(args.repeats):
        tp.append(_timed(f_plain, device))
        tc.append(_timed(f_con, device))
    t_plain, t_con = statistics.median(tp), statistics.median(tc)
    print(f'\ntrain step ({args.contrast_config} vs {args.plain_config}, '
          f'batch {B} x {size[0]}x{size[1]}, synthetic data):')
    print(f'  plain {t_plain * 1e3:9.1f} ms   contrast {t_con * 1e3:9.1f} ms'
          f'   overhead {100 * (t_con / t_plain - 1):6.1f} % (target <= 10 %)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default=None,
                        help='cpu | cuda (default: cuda if available)')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=256)
    parser.add_argument('--stride', type=int, default=4)
    parser.add_argument('--classes', type=int, default=19)
    parser.add_argument('--memory-size', type=int, default=5000)
    parser.add_argument('--mem-views', type=int, default=1,
                        help='max_views in memory mode (reference: 1)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: unchanged)')
    parser.add_argument('--train-step', action='store_true',
                        help='also time a training step of the demo model '
                        'with and without the contrast head')
    parser.add_argument(
        '--plain-config', default='configs/baseline/deeplabv3_mnv2_aal_cpu.py')
    parser.add_argument(
        '--contrast-config',
        default='configs/pixel_contrast/deeplabv3_mnv2_contrast_aal_cpu.py')
    parser.add_argument('--train-batch', type=int, default=8)
    parser.add_argument('--skip-loss', action='store_true',
                        help='only run --train-step')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    B, D, h, w, C = (args.batch, args.dim, args.height, args.width,
                     args.classes)
    print(f'device={device}  threads={torch.get_num_threads()}  B={B} D={D} '
          f'embed={h}x{w} (labels {h * args.stride}x{w * args.stride}) '
          f'C={C}')
    if not args.skip_loss:
        loss_benchmarks(args, device)
    if args.train_step:
        train_step_overhead(args, device)


def loss_benchmarks(args, device):
    B, D, h, w, C = (args.batch, args.dim, args.height, args.width,
                     args.classes)

    # ---------------------------------------------------------- agreement
    torch.manual_seed(0)
    e, lab, pred = make_inputs(B, D, h, w, C, args.stride, device, seed=1,
                               constant=True)
    ours = PixelContrastLoss(0.1, 0.07, 1024, 100)
    ref = ReferencePixelContrastLoss(0.1, 0.07, 1024, 100)
    a, b = ours(e, lab, pred).item(), ref(e, lab, pred).item()
    print(f'[agree] in-batch, constant per (image, class): ours={a:.6f} '
          f'reference={b:.6f}  |diff|={abs(a - b):.2e}')
    e2, lab2, pred2 = make_inputs(B, D, h, w, C, args.stride, device, seed=2)
    small = F.interpolate(lab2[:, None].float(), size=(h, w),
                          mode='nearest')[:, 0].long()
    s = sample_anchors(e2, small, pred2, 1024, 100, 255)
    a = in_batch_contrast(s.feats, s.labels, 0.1, 0.07).item()
    b = ref._contrastive(s.feats, s.labels.float()).item()
    print(f'[agree] in-batch, same sampled views ({s.num_rows} rows x '
          f'{s.n_view}): ours={a:.6f} reference={b:.6f}  '
          f'|diff|={abs(a - b):.2e}')
    bank = filled_bank(C, args.memory_size, D, device)
    queue_cat = torch.cat([bank.segment_queue, bank.pixel_queue], dim=1)
    ours_m = PixelContrastLoss(0.07, 0.07, 1024, args.mem_views)
    ref_fixed = ReferencePixelContrastLoss(0.07, 0.07, 1024, args.mem_views,
                                           skip_class0=False,
                                           logits_mask=False)
    ref_bug = ReferencePixelContrastLoss(0.07, 0.07, 1024, args.mem_views)
    with torch.no_grad():
        a = ours_m(e, lab, pred, queue=bank).item()
        b = ref_fixed(e, lab, pred, queue=queue_cat).item()
        c = ref_bug(e, lab, pred, queue=queue_cat).item()
    del queue_cat
    print(f'[agree] memory, constant per (image, class): ours={a:.6f} '
          f'reference without the class-0 / logits_mask bugs={b:.6f}  '
          f'|diff|={abs(a - b):.2e}  (reference as released: {c:.6f})')

    # ---------------------------------------------------------- in-batch
    e, lab, pred = make_inputs(B, D, h, w, C, args.stride, device, seed=3)
    ours.last_num_rows = 0
    ours(e, lab, pred)
    print(f'\nin-batch: {ours.last_num_rows} rows x {ours.last_n_view} views')
    t_ours = time_step(step_fn(ours, e, lab, pred), device, args.repeats)
    t_ref = time_step(step_fn(ref, e, lab, pred), device, args.repeats)
    m_ours = peak_memory(step_fn(ours, e, lab, pred), device)
    m_ref = peak_memory(step_fn(ref, e, lab, pred), device)
    print(f'  time fwd+bwd   ours {t_ours * 1e3:9.2f} ms   reference '
          f'{t_ref * 1e3:9.2f} ms   speed-up {t_ref / t_ours:6.2f}x '
          f'(target >= 10x)')
    print(f'  peak memory    ours {m_ours / 2**20:9.1f} MB   reference '
          f'{m_ref / 2**20:9.1f} MB   ratio {m_ours / m_ref:6.3f}')

    # ---------------------------------------------------------- memory mode
    ref_bug = ReferencePixelContrastLoss(0.07, 0.07, 1024, args.mem_views)

    def ref_mem(emb, label, prd, queue):
        # the reference builds cat(segment_queue, pixel_queue) every step
        q = torch.cat([queue.segment_queue, queue.pixel_queue], dim=1)
        return ref_bug(emb, label, prd, queue=q)

    ours_m(e, lab, pred, queue=bank)
    bank_mb = 2 * bank.pixel_queue.numel() * 4 / 2**20
    print(f'\nmemory mode: bank {C}x{args.memory_size}x2x{D} fp32 '
          f'({bank_mb:.0f} MB, not counted), {ours_m.last_num_rows} rows x '
          f'{ours_m.last_n_view} views')
    t_ours = time_step(step_fn(ours_m, e, lab, pred, bank), device,
                       args.repeats)
    t_ref = time_step(step_fn(ref_mem, e, lab, pred, bank), device,
                      args.repeats)
    m_ours = peak_memory(step_fn(ours_m, e, lab, pred, bank), device)
    m_ref = peak_memory(step_fn(ref_mem, e, lab, pred, bank), device)
    print(f'  time fwd+bwd   ours {t_ours * 1e3:9.2f} ms   reference '
          f'{t_ref * 1e3:9.2f} ms   speed-up {t_ref / t_ours:6.2f}x')
    print(f'  peak memory    ours {m_ours / 2**20:9.1f} MB   reference '
          f'{m_ref / 2**20:9.1f} MB   ratio {m_ours / m_ref:6.3f} '
          f'(target <= 0.333)')
    mem_method = ('torch.cuda.max_memory_allocated' if device.type == 'cuda'
                  else 'torch.profiler allocator events (peak of running sum)')
    print(f'\npeak memory method: {mem_method}; time: median of '
          f'{args.repeats} after 1 warm-up')


if __name__ == '__main__':
    main()
