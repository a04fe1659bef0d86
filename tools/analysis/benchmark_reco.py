"""Benchmark: vectorised ``ReCoLoss`` vs a loop-style port of the ReCo
reference (``lorenmt/reco`` ``module_list.compute_reco_loss`` +
``negative_index_sampler``), forward + backward.

Defaults follow the issue: Q=256 queries, N=512 negatives, 19 classes
(Cityscapes), D=256, representation at stride 4 of a 512x512 crop with
2 + 2 images (4 x 128 x 128). Prints the speed-up ratio (target >= 10x).

    python tools/analysis/benchmark_reco.py --device cuda
    python tools/analysis/benchmark_reco.py --device cpu --size 64
"""
import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

import mmseg_contrast  # noqa: F401  (registers ReCoLoss)


# --------------------------------------------------------------------------
# REFERENCE PORT (loop style, for timing/comparison only; do not use).
# Transcribed from lorenmt/reco module_list.py (HEAD 71c1b73): per-class
# Python loop, Categorical sampling, NumPy double loop over queries x negative
# classes, host syncs (.item()), graph-less CPU zero for < 2 classes.
# --------------------------------------------------------------------------
def reference_negative_index_sampler(samp_num, seg_num_list):
    negative_index = []
    for i in range(samp_num.shape[0]):
        for j in range(samp_num.shape[1]):
            negative_index += np.random.randint(
                low=sum(seg_num_list[:j]),
                high=sum(seg_num_list[:j + 1]),
                size=int(samp_num[i, j])).tolist()
    return negative_index


def reference_compute_reco_loss(rep, label, mask, prob, strong_threshold=1.0,
                                temp=0.5, num_queries=256, num_negatives=256):
    batch_size, num_feat, im_w_, im_h = rep.shape
    num_segments = label.shape[1]
    device = rep.device
    valid_pixel = label * mask
    rep = rep.permute(0, 2, 3, 1)
    seg_feat_all_list, seg_feat_hard_list = [], []
    seg_num_list, seg_proto_list = [], []
    for i in range(num_segments):
        valid_pixel_seg = valid_pixel[:, i]
        if valid_pixel_seg.sum() == 0:
            continue
        prob_seg = prob[:, i, :, :]
        rep_mask_hard = (prob_seg < strong_threshold) * valid_pixel_seg.bool()
        seg_proto_list.append(
            torch.mean(rep[valid_pixel_seg.bool()], dim=0, keepdim=True))
        seg_feat_all_list.append(rep[valid_pixel_seg.bool()])
        seg_feat_hard_list.append(rep[rep_mask_hard])
        seg_num_list.append(int(valid_pixel_seg.sum().item()))
    if len(seg_num_list) <= 1:
        return torch.tensor(0.0)
    reco_loss = torch.tensor(0.0)
    seg_proto = torch.cat(seg_proto_list)
    valid_seg = len(seg_num_list)
    seg_len = torch.arange(valid_seg)
    for i in range(valid_seg):
        if len(seg_feat_hard_list[i]) > 0:
            seg_hard_idx = torch.randint(
                len(seg_feat_hard_list[i]), size=(num_queries, ))
            anchor_feat = seg_feat_hard_list[i][seg_hard_idx]
        else:
            continue
        with torch.no_grad():
            seg_mask = torch.cat(([seg_len[i:], seg_len[:i]]))
            proto_sim = torch.cosine_similarity(
                seg_proto[seg_mask[0]].unsqueeze(0),
                seg_proto[seg_mask[1:]],
                dim=1)
            proto_prob = torch.softmax(proto_sim / temp, dim=0)
            negative_dist = torch.distributions.categorical.Categorical(
                probs=proto_prob)
            samp_class = negative_dist.sample(
                sample_shape=[num_queries, num_negatives])
            samp_num = torch.stack(
                [(samp_class == c).sum(1) for c in range(len(proto_prob))],
                dim=1)
            negative_num_list = seg_num_list[i + 1:] + seg_num_list[:i]
            negative_index = reference_negative_index_sampler(
                samp_num, negative_num_list)
            negative_feat_all = torch.cat(seg_feat_all_list[i + 1:] +
                                          seg_feat_all_list[:i])
            negative_feat = negative_feat_all[negative_index].reshape(
                num_queries, num_negatives, num_feat)
            positive_feat = seg_proto[i].unsqueeze(0).unsqueeze(0).repeat(
                num_queries, 1, 1)
            all_feat = torch.cat((positive_feat, negative_feat), dim=1)
        seg_logits = torch.cosine_similarity(
            anchor_feat.unsqueeze(1), all_feat, dim=2)
        reco_loss = reco_loss + F.cross_entropy(
            seg_logits / temp,
            torch.zeros(num_queries).long().to(device))
    return reco_loss / valid_seg
# ------------------------------ end of port -------------------------------


def make_inputs(args, device):
    g = torch.Generator().manual_seed(0)
    B, C, D, S = args.batch, args.classes, args.dim, args.size
    # blocky label map so every class is present with many pixels
    cell = max(1, S // 8)
    coarse = torch.randint(0, C, (B, S // cell + 1, S // cell + 1),
                           generator=g)
    coarse.view(-1)[:C] = torch.arange(C)
    lab = coarse.repeat_interleave(cell, 1).repeat_interleave(cell, 2)
    lab = lab[:, :S, :S].contiguous()
    lab[:, :2, :] = 255  # some ignore
    rep = torch.randn(B, D, S, S, generator=g)
    rep += torch.randn(C, D, generator=g)[lab.clamp(max=C - 1)].permute(
        0, 3, 1, 2)
    logits = torch.randn(B, C, S, S, generator=g) * 2
    prob = torch.softmax(logits, 1)
    return rep.to(device), lab.to(device), prob.to(device)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_fn(fn, device, repeats, warmup):
    """Median wall time of ``fn`` and the mean of the values it returned."""
    values = [float(fn().detach()) for _ in range(warmup)]
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        values.append(float(fn().detach()))
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.mean(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda'
                        if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--size', type=int, default=128,
                        help='representation height = width')
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument('--classes', type=int, default=19)
    parser.add_argument('--num-queries', type=int, default=256)
    parser.add_argument('--num-negatives', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    args = parser.parse_args()
    device = torch.device(args.device)

    rep, lab, prob = make_inputs(args, device)
    C = args.classes
    # reference inputs: one-hot labels + validity mask
    mask = (lab != 255).float().unsqueeze(1)
    onehot = F.one_hot(lab.clamp(max=C - 1), C).permute(0, 3, 1, 2).float()
    loss_mod = MODELS.build(
        dict(type='ReCoLoss', temperature=0.5,
             num_queries=args.num_queries, num_negatives=args.num_negatives,
             strong_threshold=0.97, ignore_index=255))
    gen = torch.Generator(device=device).manual_seed(0)
    np.random.seed(0)
    torch.manual_seed(0)

    def run_ours():
        r = rep.detach().requires_grad_(True)
        loss = loss_mod(r, lab, prob, generator=gen)
        loss.backward()
        return loss

    def run_ref():
        r = rep.detach().requires_grad_(True)
        loss = reference_compute_reco_loss(
            r, onehot, mask, prob, strong_threshold=0.97, temp=0.5,
            num_queries=args.num_queries, num_negatives=args.num_negatives)
        loss.backward()
        return loss

    t_ours, v_ours = time_fn(run_ours, device, args.repeats, args.warmup)
    t_ref, v_ref = time_fn(run_ref, device, args.repeats, args.warmup)
    P = rep.shape[0] * rep.shape[2] * rep.shape[3]
    print(f'device={device} threads={torch.get_num_threads()} '
          f'rep={tuple(rep.shape)} pixels={P} classes={C} '
          f'Q={args.num_queries} N={args.num_negatives}')
    # same distribution, different random streams: means should agree
    print(f'loss value (mean of the timed draws): vectorised {v_ours:.4f}  '
          f'reference-port {v_ref:.4f}')
    print(f'forward+backward: vectorised {t_ours * 1e3:.1f} ms  '
          f'reference-port {t_ref * 1e3:.1f} ms')
    print(f'speed-up ratio: {t_ref / t_ours:.1f}x (target >= 10x)')


if __name__ == '__main__':
    main()
