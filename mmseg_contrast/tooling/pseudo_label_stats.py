"""Per-class statistics of a model's confident predictions on a split that
has ground truth: the library behind ``tools/analysis/pseudo_label_stats.py``
(its docstring defines ``gt_share``, ``recall``, ``precision`` and
``pseudo_share``).

For a ``SemiSegmentor`` checkpoint the branch that predicts
(``semi_test_cfg.predict_on``, the teacher by default) is measured; the
option ``model.semi_test_cfg.predict_on=student`` measures the student.
``ann_file`` measures a split file of the chosen loader's images, e.g. the
unlabelled part of a few-label protocol, whose labels the training never
saw (point the test loader at the training images with the option
``test_dataloader.dataset.data_prefix.img_path=img_dir/train`` ...).
"""
import json
import os
import os.path as osp

import torch
from mmengine.config import Config

from .embedding_analysis import (
    build_dataloader,
    decode_head_of,
    init_segmentor,
)

__all__ = [
    'StatsInputError', 'confusion_by_threshold', 'summarise',
    'format_table', 'pseudo_label_stats'
]


class StatsInputError(ValueError):
    """Settings the statistics cannot be measured with (one line)."""


def confusion_by_threshold(model, loader, num_classes, thresholds,
                           ignore_index=255):
    """``(T, C, C)`` counts ``[t, gt, pred]`` of the confident pixels
    (``conf >= thresholds[t]``) and the ``(C,)`` ground-truth counts."""
    import torch
    thr = torch.tensor(thresholds, dtype=torch.float32)
    conf_mat = torch.zeros(len(thresholds), num_classes, num_classes,
                           dtype=torch.long)
    gt_count = torch.zeros(num_classes, dtype=torch.long)
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            for ds in model.predict(data['inputs'], data['data_samples']):
                prob = torch.softmax(ds.seg_logits.data.float().cpu(), dim=0)
                conf, pred = prob.max(0)
                gt = ds.gt_sem_seg.data.cpu().squeeze(0).long()
                keep = (gt != ignore_index) & (gt >= 0) & (gt < num_classes)
                gt, pred, conf = gt[keep], pred[keep], conf[keep]
                gt_count += torch.bincount(gt, minlength=num_classes)
                ok = conf[None] >= thr[:, None]  # (T, N)
                idx = (gt * num_classes + pred)[None].expand_as(ok)
                offs = torch.arange(len(thresholds))[:, None] * \
                    num_classes * num_classes
                conf_mat += torch.bincount(
                    (idx + offs)[ok],
                    minlength=conf_mat.numel()).view_as(conf_mat)
    return conf_mat, gt_count


def summarise(conf_mat, gt_count, thresholds, classes):
    """Per-threshold, per-class statistics (fractions in %)."""
    total = gt_count.sum().clamp(min=1).item()
    out = []
    for t, m in zip(thresholds, conf_mat):
        m = m.double()
        n_conf = m.sum().item()
        tp = torch.diagonal(m)
        pred_c = m.sum(0)
        per_class = []
        for c, name in enumerate(classes):
            g = gt_count[c].item()
            per_class.append(dict(
                name=name,
                gt_share=100 * g / total,
                recall=100 * tp[c].item() / g if g else None,
                precision=(100 * tp[c].item() / pred_c[c].item()
                           if pred_c[c] > 0 else None),
                pseudo_share=(100 * pred_c[c].item() / n_conf
                              if n_conf else 0.)))
        out.append(dict(
            threshold=t,
            confident=100 * n_conf / total,
            accuracy_of_confident=(100 * tp.sum().item() / n_conf
                                   if n_conf else None),
            classes=per_class))
    return out


def _fmt(v):
    return '   -  ' if v is None else f'{v:6.2f}'


def format_table(entry):
    """One threshold's statistics as a text table."""
    lines = [f"threshold {entry['threshold']:g}: {entry['confident']:.2f} % "
             f"of the pixels confident, {_fmt(entry['accuracy_of_confident'])}"
             ' % of them correct',
             f"{'class':>14} {'gt %':>6} {'pseudo%':>7} {'recall':>6} "
             f"{'prec.':>6}"]
    for c in entry['classes']:
        lines.append(f"{c['name']:>14} {c['gt_share']:6.2f} "
                     f"{c['pseudo_share']:7.2f} {_fmt(c['recall'])} "
                     f"{_fmt(c['precision'])}")
    return '\n'.join(lines)


def pseudo_label_stats(config, checkpoint, split='val', ann_file=None,
                       thresholds=(0.7, 0.95), max_images=0, out=None,
                       device='cpu', cfg_options=None):
    """Measure ``checkpoint``'s confident predictions on the ``split``
    loader of ``config`` (``ann_file`` replacing its dataset's split file),
    print one table per threshold and write the JSON ``out`` (if given).

    Returns:
        dict: ``config``, ``checkpoint``, ``split``, ``ann_file``,
        ``images`` and ``thresholds`` (the :func:`summarise` list).
    """
    bad = [t for t in thresholds if not 0 <= t <= 1]
    if bad:
        raise StatsInputError(f'--thresholds must lie in [0, 1], got {bad}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if ann_file:
        ds_cfg = cfg[f'{split}_dataloader'].dataset
        if 'datasets' in ds_cfg or 'dataset' in ds_cfg:
            raise StatsInputError(
                f'--ann-file: the {split} loader holds a dataset '
                f"wrapper ({ds_cfg.get('type')}); read a plain loader, e.g. "
                '--split test --cfg-options test_dataloader.dataset.'
                'data_prefix.img_path=img_dir/train test_dataloader.dataset.'
                'data_prefix.seg_map_path=ann_dir/train')
        ds_cfg.ann_file = ann_file
    model, cfg = init_segmentor(cfg, checkpoint, None, device)
    loader = build_dataloader(cfg, split, max_images)
    meta = getattr(model, 'dataset_meta', None) or loader.dataset.metainfo
    classes = list(meta['classes'])
    head = decode_head_of(model)
    conf_mat, gt_count = confusion_by_threshold(
        model, loader, len(classes), thresholds,
        getattr(head, 'ignore_index', 255))
    stats = summarise(conf_mat, gt_count, thresholds, classes)
    for entry in stats:
        print(format_table(entry) + '\n')
    res = dict(config=config, checkpoint=checkpoint,
               split=split, ann_file=ann_file,
               images=len(loader.dataset), thresholds=stats)
    if out:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            json.dump(res, f, indent=1)
        print(f'wrote {out}')
    return res
