"""``data/fashion_canvas``: a multi-object segmentation set composed from
Fashion-MNIST (the accuracy suite's data set).

Source: Debian's ``dataset-fashion-mnist`` (Zalando's 70 000 real product
photos, 28x28 grey, with human class labels: 60 000 train + 10 000 t10k).
Fetched by package name with ``apt-get download`` (nothing at run time).

Composition (deterministic; ``numpy.random.default_rng`` seeded per split):

* a canvas is ``CANVAS x CANVAS`` (64 x 64) grey pixels, zero outside the
  items;
* it holds 2 to 4 items (uniform), each a Fashion-MNIST photo taken in order
  from the split's image range (every photo is used at most once), at its
  native 28 x 28 size, at a uniformly random position;
* an item's **silhouette** is ``photo > 25`` (the threshold of
  ``offline_data.md`` D4: about 45 % of the pixels of a photo); the item is
  painted where its silhouette is, on top of the items painted before it,
  and the label there is ``class + 1`` (0 = background: 11 classes);
* a position is re-drawn (up to 30 times) while more than 25 % of the new
  silhouette would fall on silhouette pixels already painted, so that items
  stay recognisable; an item that finds no such position is skipped
  (counted in ``meta.json``);
* interior pixels of an item darker than the threshold are background, as in
  the D4 recipe.

Splits (disjoint photo ranges; ``test`` is never used to choose settings):

======  ======================  ========
split   Fashion-MNIST photos    canvases
======  ======================  ========
train   train[0, 20000)         2000
val     train[50000, 60000)     300
test    t10k[0, 10000)          500
======  ======================  ========

Labelled subsets for the few-label comparisons are chosen with the project's
*partial dataset, full labels* selector
(:func:`mmseg_contrast.datasets.few_label.select_labeled_subset`, ReCo's
class-balanced greedy choice) on the train canvases' class sets and written
to ``splits/train_labeled_{N}_seed{S}.txt`` /
``splits/train_unlabeled_{N}_seed{S}.txt``.

Classes depend neither on position nor on the other items of a canvas, and a
canvas holds several classes, so ClassMix (pasting the pixels of some
classes of one canvas onto another) gives plausible images.
"""
import gzip
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

from ...datasets.few_label import select_labeled_subset
from .cache import prepare_once
from .fetch import fetch_deb

__all__ = [
    'FASHION_DEB', 'FASHION_SRC', 'CANVAS', 'ITEM', 'THRESHOLD', 'SPLITS',
    'LABELED_SUBSETS', 'read_idx', 'compose_canvases',
    'build_fashion_canvas', 'prepare_fashion_canvas'
]

FASHION_DEB = 'dataset-fashion-mnist'
FASHION_SRC = 'usr/share/datasets/fashion-mnist'
CANVAS = 64
ITEM = 28
THRESHOLD = 25
ITEMS_PER_CANVAS = (2, 4)
MAX_OVERLAP = 0.25
MAX_TRIES = 30
#: split -> (Fashion-MNIST file prefix, first photo, last photo + 1,
#:           number of canvases, seed)
SPLITS = dict(
    train=('train', 0, 20000, 2000, 0),
    val=('train', 50000, 60000, 300, 1),
    test=('t10k', 0, 10000, 500, 2),
)
#: (number of labelled canvases, min classes per canvas incl. background,
#:  selection seed) written at preparation time
LABELED_SUBSETS = ((20, 3, 0), (20, 3, 1), (20, 3, 2), (100, 3, 0))


def read_idx(path):
    """Read a (gzipped) idx file: images (N, 28, 28) or labels (N,)."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    magic = int.from_bytes(data[:4], 'big')
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        raise ValueError(f'{path}: not a uint8 idx file (magic {magic:#x})')
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
            for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f'{path}: {arr.size} values, header says {dims}')
    return arr.reshape(dims)


def compose_canvases(images, labels, num, seed, canvas=CANVAS):
    """Compose ``num`` canvases from ``images`` (N, 28, 28) / ``labels`` (N,).

    Returns ``(imgs (num, canvas, canvas) uint8, segs (same) uint8,
    class_sets list[list[int]], stats dict)``.
    """
    rng = np.random.default_rng(seed)
    imgs = np.zeros((num, canvas, canvas), np.uint8)
    segs = np.zeros((num, canvas, canvas), np.uint8)
    nxt, skipped, placed = 0, 0, 0
    lo, hi = ITEMS_PER_CANVAS
    for c in range(num):
        occupied = np.zeros((canvas, canvas), bool)
        for _ in range(int(rng.integers(lo, hi + 1))):
            if nxt >= len(images):
                raise ValueError(
                    f'compose_canvases: {len(images)} photos are not enough '
                    f'for {num} canvases')
            photo, cls = images[nxt], int(labels[nxt])
            nxt += 1
            sil = photo > THRESHOLD
            area = max(int(sil.sum()), 1)
            for _ in range(MAX_TRIES):
                y, x = rng.integers(0, canvas - ITEM + 1, size=2)
                win = occupied[y:y + ITEM, x:x + ITEM]
                inter = int((win & sil).sum())
                if inter <= MAX_OVERLAP * area:
                    break
            else:
                skipped += 1
                continue
            placed += 1
            sl = (c, slice(y, y + ITEM), slice(x, x + ITEM))
            imgs[sl][sil] = photo[sil]
            segs[sl][sil] = cls + 1
            occupied[y:y + ITEM, x:x + ITEM] |= sil
    class_sets = [np.unique(s).tolist() for s in segs]
    return imgs, segs, class_sets, dict(
        photos_used=nxt, items_placed=placed, items_skipped=skipped)


def build_fashion_canvas(src_dir, out_dir):
    """Write the canvases, labelled-subset split files and ``meta.json``.

    ``src_dir`` holds ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.
    Returns the metadata dict.
    """
    raw = {}
    meta = dict(source=FASHION_DEB, canvas=CANVAS, item=ITEM,
                threshold=THRESHOLD, items_per_canvas=ITEMS_PER_CANVAS,
                max_overlap=MAX_OVERLAP, splits={}, labeled_subsets={})
    for split, (prefix, a, b, num, seed) in SPLITS.items():
        if prefix not in raw:
            raw[prefix] = (
                read_idx(osp.join(src_dir, f'{prefix}-images-idx3-ubyte.gz')),
                read_idx(osp.join(src_dir, f'{prefix}-labels-idx1-ubyte.gz')))
        images, labels = raw[prefix]
        imgs, segs, sets, stats = compose_canvases(
            images[a:b], labels[a:b], num, seed)
        for sub in ('img_dir', 'ann_dir'):
            os.makedirs(osp.join(out_dir, sub, split))
        names = []
        for i in range(num):
            name = f'{split}_{i:05d}'
            names.append(name)
            Image.fromarray(imgs[i], mode='L').save(
                osp.join(out_dir, 'img_dir', split, name + '.png'))
            Image.fromarray(segs[i], mode='L').save(
                osp.join(out_dir, 'ann_dir', split, name + '.png'))
        counts = np.bincount(segs.ravel(), minlength=11)
        meta['splits'][split] = dict(
            source=f'{prefix}[{a}, {b})', canvases=num, seed=seed,
            class_pixels=counts.tolist(), **stats)
        if split == 'train':
            os.makedirs(osp.join(out_dir, 'splits'))
            for n, min_classes, sel_seed in LABELED_SUBSETS:
                lab, unlab = select_labeled_subset(
                    names, sets, n, min_classes=min_classes, seed=sel_seed,
                    num_classes=11)
                key = f'{n}_seed{sel_seed}'
                for kind, items in (('labeled', lab), ('unlabeled', unlab)):
                    with open(osp.join(out_dir, 'splits',
                                       f'train_{kind}_{key}.txt'), 'w') as f:
                        f.write('\n'.join(items) + '\n')
                chosen = set(lab)
                covered = sorted({c for nm, s in zip(names, sets)
                                  if nm in chosen for c in s})
                meta['labeled_subsets'][key] = dict(
                    num_labels=n, min_classes=min_classes, seed=sel_seed,
                    labeled=lab, classes_covered=covered)
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    return meta


def prepare_fashion_canvas(data_root='data'):
    """``data_root/fashion_canvas`` (cached; rebuilt only when missing or
    incomplete).

    Returns:
        str: the data set root (for ``FashionCanvasDataset``).
    """
    root = osp.join(data_root, 'fashion_canvas')

    def build(tmp):
        src = osp.join(fetch_deb(FASHION_DEB), FASHION_SRC)
        meta = build_fashion_canvas(src, tmp)
        return dict(source=FASHION_DEB,
                    splits={k: v['canvases'] for k, v in
                            meta['splits'].items()})

    prepare_once('fashion_canvas', root, build)
    return root
