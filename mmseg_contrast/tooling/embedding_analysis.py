"""Pixel-embedding analysis shared by ``tools/analysis/*``.

* :func:`init_segmentor`: config + checkpoint (path or URL) -> eval model,
  with one-line errors for a missing checkpoint or one that does not match
  the config (e.g. a different number of classes).
* :func:`collect_embeddings`: runs the model over a (val) dataloader and
  collects, per class, L2-normalised pixel embeddings: the projection-head
  output when the decode head has one (``proj_head`` of the ContrastiveSeg
  heads, ``reco_proj`` of the ReCo heads), else the pre-classifier feature
  (the input of ``conv_seg``, captured with a forward pre-hook, so it works
  for every stock head). It returns exact class sums/counts over all
  labelled feature pixels (for class means) and a class-balanced random
  sample (for t-SNE).
* :func:`class_relation`: cosine-similarity matrix of the class-mean
  embeddings (ReCo's class-relation visualisation) and a SciPy linkage for
  the dendrogram; :func:`reco_negative_distribution`: ReCo's negative-class
  sampling distribution derived from it.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint.errors import CheckpointMismatchError
from ..converters.keys import state_dict_of, strip_module
from .publish import PROJ_ATTRS, is_memory_key, is_proj_key

__all__ = [
    'CheckpointMismatchError', 'init_segmentor', 'check_state_dict',
    'build_dataloader', 'decode_head_of', 'collect_embeddings',
    'sample_per_class', 'class_relation', 'reco_negative_distribution',
    'palette_colors'
]


def _state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    return strip_module(state_dict_of(checkpoint))


def check_state_dict(model: torch.nn.Module, state_dict: dict,
                     checkpoint: str, config: str) -> List[str]:
    """Raise :class:`CheckpointMismatchError` (one line) if ``state_dict``
    cannot be the weights of ``model``; return the model keys it lacks."""
    own = model.state_dict()
    common = [k for k in state_dict if k in own]
    if not common:
        raise CheckpointMismatchError(
            f'Checkpoint {checkpoint} shares no parameter names with the '
            f'model built from {config} (is it the right config?).')
    for head_name in ('decode_head', 'decode_head.1', 'decode_head.0'):
        key = f'{head_name}.conv_seg.weight'
        if key in state_dict and key in own and \
                state_dict[key].shape[0] != own[key].shape[0]:
            raise CheckpointMismatchError(
                f'Checkpoint {checkpoint} has a {state_dict[key].shape[0]}-'
                f'class head ({key} {tuple(state_dict[key].shape)}) but '
                f'{config} builds {own[key].shape[0]} classes '
                f'(model.decode_head.num_classes).')
    bad = [k for k in common if state_dict[k].shape != own[k].shape]
    if bad:
        k = bad[0]
        raise CheckpointMismatchError(
            f'Checkpoint {checkpoint} does not match {config}: {len(bad)} '
            f'tensors differ in shape, e.g. {k} is '
            f'{tuple(state_dict[k].shape)} in the checkpoint and '
            f'{tuple(own[k].shape)} in the model.')
    return [
        k for k in own
        if k not in state_dict and not k.endswith('num_batches_tracked')
    ]


def init_segmentor(config,
                   checkpoint: str,
                   cfg_options: Optional[dict] = None,
                   device: str = 'cpu'):
    """Build the segmentor of ``config`` and load ``checkpoint`` into it.

    ``checkpoint`` may be a local path or an ``http(s)://`` URL (verified
    download, see :mod:`mmseg_contrast.checkpoint.download`). Returns
    ``(model, cfg)``; ``model.dataset_meta`` comes from the checkpoint's
    ``meta.dataset_meta`` when present.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmseg.registry import MODELS
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg_name = getattr(cfg, 'filename', None) or str(config)
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'Checkpoint not found: {checkpoint}')
    model_cfg = cfg.model
    if 'pretrained' in model_cfg:  # weights come from the checkpoint
        model_cfg.pretrained = None
    model = MODELS.build(model_cfg)
    ckpt = CheckpointLoader.load_checkpoint(
        checkpoint, map_location='cpu', logger='silent')
    sd = _state_dict(ckpt)
    missing = check_state_dict(model, sd, checkpoint, cfg_name)
    # published checkpoints legitimately lack training-only state
    missing = [
        k for k in missing
        if not (is_memory_key(k) or is_proj_key(k))
    ]
    model.proj_head_loaded = not any(
        is_proj_key(k) for k in model.state_dict() if k not in sd)
    if missing:
        raise CheckpointMismatchError(
            f'Checkpoint {checkpoint} lacks {len(missing)} weights of the '
            f'model built from {cfg_name}, e.g. {missing[0]}.')
    model.load_state_dict(
        {k: v
         for k, v in sd.items() if k in model.state_dict()}, strict=False)
    model = _prediction_branch(model)
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    if isinstance(meta, dict) and 'dataset_meta' in meta:
        model.dataset_meta = meta['dataset_meta']
    model.cfg = cfg
    return model.to(device).eval(), cfg


def _prediction_branch(model):
    """For a mean-teacher ``SemiSegmentor`` the branch that predicts
    (``semi_test_cfg.predict_on``, the teacher by default), else ``model``.
    Its own data preprocessor handles val batches."""
    if hasattr(model, 'student') and hasattr(model, 'teacher'):
        cfg = getattr(model, 'semi_test_cfg', None) or {}
        return getattr(model, cfg.get('predict_on', 'teacher'))
    return model


def build_dataloader(cfg, split: str = 'val', max_images: Optional[int] = 0):
    """A single-process, batch-1 dataloader for ``cfg.<split>_dataloader``.

    ``max_images`` > 0 keeps the first ``max_images`` images.
    """
    import copy

    from mmengine.runner import Runner
    key = f'{split}_dataloader'
    if key not in cfg:
        raise KeyError(f'The config has no {key}')
    dl_cfg = copy.deepcopy(cfg[key])
    dl_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    if max_images:
        dl_cfg.dataset['indices'] = int(max_images)
    return Runner.build_dataloader(dl_cfg)


def decode_head_of(model):
    """The decode head whose ``conv_seg`` makes the final prediction."""
    head = model.decode_head
    if isinstance(head, torch.nn.ModuleList):  # cascade (OCRNet)
        head = head[-1]
    return head


def sample_per_class(labels: torch.Tensor, k: int,
                     generator: Optional[torch.Generator] = None
                     ) -> torch.Tensor:
    """Indices of at most ``k`` random elements of every label value.

    Vectorised: sort by (label, random key), rank inside each label run,
    keep ranks < k.
    """
    n = labels.numel()
    if n == 0:
        return labels.new_zeros(0, dtype=torch.long)
    r = torch.rand(n, generator=generator, dtype=torch.float64)
    order = torch.argsort(labels.double() + r * 0.5)
    sorted_lab = labels[order]
    _, counts = torch.unique_consecutive(sorted_lab, return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank = torch.arange(n) - starts
    return order[rank < k]


@torch.no_grad()
def collect_embeddings(model,
                       dataloader,
                       num_classes: int,
                       embedding: str = 'auto',
                       pixels_per_image: int = 50,
                       max_per_class: int = 300,
                       seed: int = 0,
                       progress: bool = True) -> dict:
    """Per-class pixel embeddings of ``model`` over ``dataloader``.

    Args:
        embedding: ``'proj'`` (projection head; error if the head has none),
            ``'feature'`` (pre-classifier feature) or ``'auto'`` (proj if
            available).
        pixels_per_image: random labelled feature pixels kept per class and
            image for the sample.
        max_per_class: cap on the sampled pixels per class overall.

    Returns:
        dict with ``kind`` ('proj'|'feature'), ``sums`` (C, D) and
        ``counts`` (C,) over *all* labelled feature pixels, ``samples``
        (N, D) and ``sample_labels`` (N,), embeddings L2-normalised.
    """
    from mmengine.utils import ProgressBar
    head = decode_head_of(model)
    proj = next((getattr(head, a) for a in PROJ_ATTRS
                 if getattr(head, a, None) is not None), None)
    has_proj = proj is not None
    if embedding == 'proj' and not has_proj:
        raise ValueError(f'{type(head).__name__} has no projection head; use '
                         f"embedding='feature'")
    if embedding not in ('auto', 'proj', 'feature'):
        raise ValueError(f'embedding must be auto|proj|feature, got '
                         f'{embedding!r}')
    if has_proj and not getattr(model, 'proj_head_loaded', True):
        if embedding == 'proj':
            raise ValueError('The checkpoint has no projection-head weights '
                             '(published with --strip-proj?); use '
                             "embedding='feature'")
        has_proj = False
    kind = 'proj' if (has_proj and embedding != 'feature') else 'feature'
    captured = {}

    def _hook(module, args):
        captured['feat'] = args[0]

    handle = head.conv_seg.register_forward_pre_hook(_hook)
    gen = torch.Generator().manual_seed(seed)
    sums = counts = None
    samples, sample_labels = [], []
    bar = ProgressBar(len(dataloader)) if progress else None
    try:
        for batch in dataloader:
            data = model.data_preprocessor(batch, False)
            inputs, data_samples = data['inputs'], data['data_samples']
            metas = [ds.metainfo for ds in data_samples]
            model.encode_decode(inputs, metas)
            feat = captured.pop('feat')
            emb = proj(feat) if kind == 'proj' else feat
            emb = F.normalize(emb.float(), dim=1)
            if sums is None:
                sums = emb.new_zeros(num_classes, emb.shape[1],
                                     dtype=torch.float64)
                counts = torch.zeros(num_classes, dtype=torch.long)
            hp, wp = inputs.shape[-2:]
            hf, wf = emb.shape[-2:]
            for i, ds in enumerate(data_samples):
                h1, w1 = ds.metainfo.get('img_shape', (hp, wp))[:2]
                hv = max(1, min(hf, round(hf * h1 / hp)))
                wv = max(1, min(wf, round(wf * w1 / wp)))
                gt = ds.gt_sem_seg.data.to(emb.device).float()[None]
                lab = F.interpolate(gt, size=(hv, wv),
                                    mode='nearest').long().flatten()
                e = emb[i, :, :hv, :wv].flatten(1).t()  # (hv*wv, D)
                valid = (lab >= 0) & (lab < num_classes)
                lab, e = lab[valid], e[valid]
                sums.index_add_(0, lab, e.double())
                counts += torch.bincount(lab.cpu(), minlength=num_classes)
                keep = sample_per_class(lab.cpu(), pixels_per_image, gen)
                samples.append(e[keep].cpu())
                sample_labels.append(lab[keep].cpu())
            if bar is not None:
                bar.update()
    finally:
        handle.remove()
        if bar is not None:
            bar.file.write('\n')  # ProgressBar leaves the cursor on its line
            bar.file.flush()
    if sums is None:
        raise ValueError('The dataloader yielded no images')
    samples = torch.cat(samples)
    sample_labels = torch.cat(sample_labels)
    keep = sample_per_class(sample_labels, max_per_class, gen)
    keep = keep.sort().values
    return dict(
        kind=kind,
        sums=sums.cpu(),
        counts=counts,
        samples=samples[keep],
        sample_labels=sample_labels[keep])


def class_relation(sums: torch.Tensor, counts: torch.Tensor,
                   class_names: Sequence[str], method: str = 'average'):
    """Cosine matrix of class-mean embeddings + hierarchical clustering.

    Classes never seen (count 0) are dropped. Returns ``(names, cos, Z)``:
    the kept class names, the (K, K) cosine-similarity matrix and the SciPy
    linkage matrix (cosine distance, ``method`` linkage).
    """
    from scipy.cluster.hierarchy import linkage
    seen = counts > 0
    if int(seen.sum()) < 2:
        raise ValueError('Fewer than 2 classes occur in the data; no '
                         'relation to show.')
    means = F.normalize(
        (sums[seen] / counts[seen, None].double()).float(), dim=1)
    cos = (means @ means.t()).clamp(-1, 1).numpy()
    names = [n for n, s in zip(class_names, seen.tolist()) if s]
    dist = np.clip(1.0 - cos, 0.0, 2.0)
    iu = np.triu_indices(len(names), k=1)
    Z = linkage(dist[iu], method=method)
    return names, cos, Z


def reco_negative_distribution(cos: np.ndarray,
                               tau: float = 0.5) -> np.ndarray:
    """ReCo's active key sampling distribution from the relation graph.

    ``P[p, q] = exp(G[p, q] / tau) / sum_{j != p} exp(G[p, j] / tau)`` for
    ``q != p`` and 0 on the diagonal, with ``G`` the cosine matrix of the
    class means (ReCo, Liu et al. ICLR'22, tau = 0.5): the probability that a
    negative key for class ``p`` is drawn from class ``q``.
    """
    if tau <= 0:
        raise ValueError(f'tau must be > 0, got {tau}')
    logits = np.asarray(cos, dtype=np.float64) / tau
    np.fill_diagonal(logits, -np.inf)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def palette_colors(palette, num_classes: int) -> np.ndarray:
    """(C, 3) float RGB in [0, 1] from a dataset palette (or tab20)."""
    if palette is not None and len(palette) >= num_classes:
        return np.asarray(palette[:num_classes], dtype=np.float64) / 255.0
    import matplotlib
    cmap = matplotlib.colormaps['tab20']
    return np.asarray([cmap(i % 20)[:3] for i in range(num_classes)])
