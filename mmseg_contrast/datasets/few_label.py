"""Few-label protocols of ReCo (Liu et al., ICLR'22) for any mmseg dataset.

*Partial dataset, full labels* (:func:`select_labeled_subset`): a seeded,
class-balanced greedy choice of ``N`` labelled images, each with at least
``min_classes`` classes, always adding an image that contains one of the
least-sampled classes so far (ReCo ``build_data.get_pascal_idx`` /
``get_cityscapes_idx``; ``min_classes`` = 3 for Pascal, 12 for CityScapes).
The rest of the images form the unlabelled split. Writes split files in
mmseg's ``ann_file`` format (one image name per line, relative to
``data_prefix.img_path``, without suffix).

*Partial labels, full dataset* (:func:`partial_label_map`): per image and
class, one seed pixel chosen uniformly among the class's pixels, grown by
repeated 5x5 dilation until at least ``fraction`` of the class's pixels are
covered (intersected with the class region); ``fraction=0`` keeps only the
seed pixel ("1 pixel"). Everything else becomes ignore (ReCo
``dataset/pascal_preprocess.py``; CLI names p0 / p1 / p5 / p25).

Determinism: images are processed in sorted order of their names, ReCo's
Python ``random.shuffle`` becomes ``random.Random(seed).shuffle`` of the
sorted names (the reference shuffles unsorted ``glob`` results, so its
CityScapes and SUN splits depend on the filesystem), and partial labels use a
NumPy generator seeded by ``(seed, crc32(image name))``, so each image's
labels do not depend on which other images are processed or in which order.
The same seed pixel is used for every fraction, so the label sets are nested
(1 pixel within 1 % within 5 % within 25 %); the reference draws a new seed
pixel per fraction from one global stream.

Deviations from the reference (fixes):

* ``least`` (the least-sampled classes) only considers classes that still
  occur in an unselected eligible image; the reference loops forever when a
  least-sampled class cannot be added any more (e.g. it occurs in a single
  image, or only in images with fewer than ``min_classes`` classes);
* asking for more images than have ``min_classes`` classes raises a clear
  error instead of looping forever;
* the dilation is computed in closed form: ``t`` dilations of the seed with
  a 5x5 square give the square of half-width ``2t`` around it, i.e. the
  pixels at chessboard distance ``<= 2t`` (``scipy.ndimage.
  distance_transform_cdt``), and ``t`` is the smallest count reaching the
  target (identical to iterating ``cv2.dilate``/``binary_dilation``).
"""
import os
import os.path as osp
import random
import zlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage

PARTIAL_MODES = {'p0': 0.0, 'p1': 0.01, 'p5': 0.05, 'p25': 0.25}


# ---------------------------------------------------------------- subset
def select_labeled_subset(names: Sequence[str],
                          class_sets: Sequence[Sequence[int]],
                          num_labels: int,
                          min_classes: int = 1,
                          seed: int = 0,
                          num_classes: Optional[int] = None
                          ) -> Tuple[List[str], List[str]]:
    """ReCo's class-balanced greedy selection of labelled images.

    Args:
        names: image names (any order; they are sorted first).
        class_sets: the valid classes present in each image (ignore
            excluded), aligned with ``names``.
        num_labels: number of labelled images ``N``; ``0`` means all images
            are labelled (and unlabelled), as in ReCo.
        min_classes: ``T``, minimum number of distinct classes of a
            labelled image (ReCo: 3 for Pascal, 12 for CityScapes).
        seed: shuffle seed.
        num_classes: number of classes (default: max class + 1).

    Returns:
        ``(labeled, unlabeled)``: both sorted by name.
    """
    if len(names) != len(class_sets):
        raise ValueError(f'select_labeled_subset: {len(names)} names but '
                         f'{len(class_sets)} class sets')
    if len(set(names)) != len(names):
        raise ValueError('select_labeled_subset: image names must be unique')
    order = sorted(range(len(names)), key=lambda i: names[i])
    names = [names[i] for i in order]
    sets = [np.unique(np.asarray(class_sets[i], dtype=np.int64))
            for i in order]
    if num_labels == 0:
        return list(names), list(names)
    if num_labels < 0 or num_labels > len(names):
        raise ValueError(f'select_labeled_subset: num_labels must be in '
                         f'[0, {len(names)}], got {num_labels}')
    eligible = np.array([len(s) >= min_classes for s in sets])
    if eligible.sum() < num_labels:
        raise ValueError(
            f'select_labeled_subset: only {int(eligible.sum())} of '
            f'{len(names)} images have >= min_classes={min_classes} classes, '
            f'cannot select {num_labels}; lower min_classes or num_labels')
    if num_classes is None:
        num_classes = 1 + int(
            max((s.max() for s in sets if len(s)), default=-1))
    count = np.zeros(num_classes, dtype=np.int64)
    # how many unselected eligible images contain each class
    avail = np.zeros(num_classes, dtype=np.int64)
    for s, e in zip(sets, eligible):
        if e:
            avail[s] += 1

    pool = list(range(len(names)))
    random.Random(seed).shuffle(pool)
    labeled: List[int] = []
    rejected: List[int] = []
    least = np.zeros(num_classes, dtype=bool)
    while len(labeled) < num_labels:
        if not pool:
            pool, rejected = rejected, []
        i = pool.pop()
        cls = sets[i]
        if eligible[i] and (not labeled or least[cls].any()):
            labeled.append(i)
            count[cls] += 1
            avail[cls] -= 1
        else:
            rejected.append(i)
        coverable = avail > 0
        if coverable.any():
            least = coverable & (count == count[coverable].min())
        else:
            least[:] = False
    chosen = set(labeled)
    return ([names[i] for i in sorted(labeled)],
            [n for j, n in enumerate(names) if j not in chosen])


# ---------------------------------------------------------- partial labels
def _parse_fraction(mode: Union[str, float]) -> float:
    if isinstance(mode, str):
        if mode not in PARTIAL_MODES:
            raise ValueError(f'partial-label mode must be one of '
                             f'{sorted(PARTIAL_MODES)} or a fraction in '
                             f'[0, 1], got {mode!r}')
        return PARTIAL_MODES[mode]
    fraction = float(mode)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f'partial-label fraction must be in [0, 1], '
                         f'got {mode}')
    return fraction


def partial_label_map(gt: np.ndarray,
                      mode: Union[str, float],
                      rng: np.random.Generator,
                      ignore_index: int = 255) -> np.ndarray:
    """Keep a grown seed region per class, ignore the rest.

    Args:
        gt: ``(H, W)`` integer label map (``ignore_index`` = void).
        mode: ``'p0'`` (1 pixel), ``'p1'`` (1 %), ``'p5'``, ``'p25'``, or a
            fraction in ``[0, 1]`` (0 = one pixel).
        rng: NumPy generator (one seed pixel drawn per class, classes in
            ascending order).
        ignore_index: void value, never a class; the output's fill value.

    Returns:
        ``(H, W)`` map with the kept pixels' labels and ``ignore_index``
        elsewhere. Classes with a target of <= 1 pixel keep the seed only.
    """
    fraction = _parse_fraction(mode)
    gt = np.asarray(gt)
    if gt.ndim != 2:
        raise ValueError(f'partial_label_map: gt must be (H, W), '
                         f'got shape {gt.shape}')
    out = np.full_like(gt, ignore_index)
    for c in np.unique(gt):
        if c == ignore_index:
            continue
        region = gt == c
        ys, xs = np.nonzero(region)                     # row-major order
        k = int(rng.integers(len(ys)))
        sy, sx = ys[k], xs[k]
        target = int(fraction * len(ys))
        if target <= 1:
            out[sy, sx] = c
            continue
        seed_mask = np.ones(gt.shape, dtype=bool)
        seed_mask[sy, sx] = False
        # chessboard distance to the seed: t 5x5 dilations reach 2t
        dist = ndimage.distance_transform_cdt(seed_mask, metric='chessboard')
        d = dist[region]
        kth = np.partition(d, target - 1)[target - 1]
        steps = -(-int(kth) // 2)                       # ceil(kth / 2)
        out[region & (dist <= 2 * steps)] = c
    return out


def image_rng(seed: int, name: str) -> np.random.Generator:
    """Per-image generator, independent of processing order."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


# ------------------------------------------------------- dataset helpers
def _unwrap_dataset_cfg(cfg):
    """The base dataset config inside RepeatDataset/ClassBalanced wrappers."""
    while isinstance(cfg, dict) and 'dataset' in cfg and 'type' in cfg \
            and 'data_root' not in cfg:
        cfg = cfg['dataset']
    if isinstance(cfg, dict) and 'datasets' in cfg:
        raise ValueError('few-label tools need a single dataset, got a '
                         'ConcatDataset; pick one with --dataset-key')
    return cfg


def build_label_dataset(dataset_cfg: dict):
    """Build an mmseg dataset whose items are the loaded label maps
    (``LoadAnnotations`` honours ``reduce_zero_label`` and ``label_map``)."""
    from mmengine.config import ConfigDict
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    cfg = ConfigDict(_unwrap_dataset_cfg(dataset_cfg)).copy()
    cfg['pipeline'] = [dict(type='LoadAnnotations')]
    cfg['serialize_data'] = False
    cfg.pop('indices', None)
    return DATASETS.build(cfg)


def dataset_image_name(dataset, info: dict) -> str:
    """Name of an image as an ``ann_file`` line (relative to the image
    prefix, without ``img_suffix``)."""
    rel = osp.relpath(info['img_path'], dataset.data_prefix['img_path'])
    suffix = getattr(dataset, 'img_suffix', '')
    if suffix and rel.endswith(suffix):
        rel = rel[:-len(suffix)]
    return rel.replace(os.sep, '/')


def load_label_maps(dataset) -> Dict[str, Tuple[dict, np.ndarray]]:
    """``{name: (data_info, gt_seg_map)}`` for every item, sorted by name."""
    items = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        results = dataset.pipeline(dict(info))
        name = dataset_image_name(dataset, info)
        if name in items:
            raise ValueError(f'duplicate image name {name!r} in the dataset')
        items[name] = (info, results['gt_seg_map'])
    return dict(sorted(items.items()))


def dataset_class_sets(dataset, ignore_index: int = 255
                       ) -> Tuple[List[str], List[np.ndarray]]:
    """Sorted image names and the valid classes present in each image."""
    num_classes = len(dataset.metainfo['classes'])
    names, sets = [], []
    for name, (_, gt) in load_label_maps(dataset).items():
        u = np.unique(gt)
        names.append(name)
        sets.append(u[(u != ignore_index) & (u >= 0) & (u < num_classes)])
    return names, sets


def write_split_files(labeled: Sequence[str], unlabeled: Sequence[str],
                      labeled_file: str, unlabeled_file: str) -> None:
    for path, names in ((labeled_file, labeled),
                        (unlabeled_file, unlabeled)):
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            f.write(''.join(n + '\n' for n in names))


def write_partial_labels(dataset,
                         mode: Union[str, float],
                         seed: int,
                         out_dir: str,
                         ignore_index: int = 255) -> List[str]:
    """Write partial-label PNGs for every image of ``dataset`` to
    ``out_dir`` (same relative paths as under the dataset's
    ``seg_map_path``). Values are written in the file's raw label space
    (palette kept), unlabelled pixels get the raw void value (0 for
    ``reduce_zero_label`` datasets, else ``ignore_index``). Returns the
    written paths (sorted by image name)."""
    from PIL import Image
    written = []
    seg_root = dataset.data_prefix['seg_map_path']
    reduce_zero = bool(getattr(dataset, 'reduce_zero_label', False))
    raw_void = 0 if reduce_zero else ignore_index
    for name, (info, gt) in load_label_maps(dataset).items():
        part = partial_label_map(gt, mode, image_rng(seed, name),
                                 ignore_index=ignore_index)
        with Image.open(info['seg_map_path']) as im:
            im.load()
            raw = np.asarray(im)
            palette = im.getpalette() if im.mode == 'P' else None
        if raw.shape != gt.shape:
            raise ValueError(f'{info["seg_map_path"]}: raw label shape '
                             f'{raw.shape} differs from the loaded '
                             f'{gt.shape}')
        out = np.where(part != ignore_index, raw,
                       np.asarray(raw_void, dtype=raw.dtype))
        rel = osp.relpath(info['seg_map_path'], seg_root)
        path = osp.join(out_dir, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        img = Image.fromarray(out.astype(raw.dtype))
        if palette is not None:
            img.putpalette(palette)  # 'L' -> 'P', indices unchanged
        img.save(path)
        written.append(path)
    return written
