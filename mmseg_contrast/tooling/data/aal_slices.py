"""``data/aal_slices``: Colin27 T1 MRI + AAL atlas (Debian's
``mricron-data``) cut into 2D axial slices with 16 grouped classes (see
:mod:`mmseg_contrast.datasets.aal_slices` for the classes).

* axial slices ``z`` of the 181x217x181 RAS volume, only those that contain
  AAL labels (z = 10..155, 146 slices); each slice is stored as a 217x181
  (H x W) image with anterior at the top and the subject's left on the image
  left (neurological convention);
* T1 intensities are clipped at the 99.8th percentile of the non-zero voxels
  of the whole volume and scaled to uint8 (one scaling for all slices);
* **blocked split with no leakage**: neighbouring slices are nearly identical,
  so the slice range is cut into periods of ``36`` slices laid out as
  ``train 20 | gap 4 | val 8 | gap 4``; gap slices are dropped. Every
  validation slice is therefore at least 5 slices (5 mm) away from any
  training slice, and the 4 validation slabs sample the cerebellum, the
  basal-ganglia level, the centrum-semiovale level and the vertex. The split is
  recorded in ``data/aal_slices/meta.json``.
"""
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

from ...datasets.aal_slices import AAL_CLASSES, aal_region_to_class
from .cache import OfflineDataError, prepare_once
from .fetch import fetch_deb

__all__ = [
    'MRICRON_DEB', 'MRICRON_TEMPLATES', 'AAL_SPLIT', 'aal_blocked_split',
    'parse_aal_txt', 'prepare_aal_slices'
]

MRICRON_DEB = 'mricron-data'
MRICRON_TEMPLATES = 'usr/share/mricron/templates'

# Blocked AAL split (slices): train | gap | val | gap, repeated.
AAL_SPLIT = dict(train=20, gap=4, val=8)


def aal_blocked_split(z_lo, z_hi, train=AAL_SPLIT['train'],
                      gap=AAL_SPLIT['gap'], val=AAL_SPLIT['val']):
    """Blocked train/val split of slice indices ``z_lo..z_hi`` (inclusive).

    Periods of ``train + gap + val + gap`` slices, laid out
    ``train | gap | val | gap``; gap slices are in neither split, so every
    val slice is more than ``gap`` slices from every train slice.

    Returns:
        dict: ``{'train': [z...], 'val': [z...], 'gap': [z...]}``.
    """
    period = train + 2 * gap + val
    out = dict(train=[], val=[], gap=[])
    for z in range(z_lo, z_hi + 1):
        p = (z - z_lo) % period
        if p < train:
            out['train'].append(z)
        elif train + gap <= p < train + gap + val:
            out['val'].append(z)
        else:
            out['gap'].append(z)
    return out


def parse_aal_txt(path):
    """``aal.nii.txt`` -> list of (label value, name, code)."""
    regions = []
    with open(path, encoding='latin-1') as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise OfflineDataError(
                    f'{path}: cannot parse line {line.strip()!r} (expected '
                    f'"VALUE NAME CODE")')
            regions.append((int(parts[0]), parts[1], int(parts[2])))
    return regions


def _load_nifti(path):
    import nibabel as nib
    img = nib.load(path)
    img = nib.as_closest_canonical(img)  # RAS+ array axes
    return np.asanyarray(img.dataobj), img


def prepare_aal_slices(data_root='data'):
    """``data_root/aal_slices``: axial Colin27 T1 slices with grouped AAL
    labels (16 classes), blocked train/val split (see module docstring).

    Returns:
        str: the data set root (for ``AALSliceDataset``).
    """
    root = osp.join(data_root, 'aal_slices')

    def build(tmp):
        tpl = osp.join(fetch_deb(MRICRON_DEB), MRICRON_TEMPLATES)
        t1, t1_img = _load_nifti(osp.join(tpl, 'ch2.nii.gz'))
        aal, aal_img = _load_nifti(osp.join(tpl, 'aal.nii.gz'))
        if t1.shape != aal.shape or not np.allclose(t1_img.affine,
                                                    aal_img.affine):
            raise OfflineDataError(
                f'ch2.nii.gz {t1.shape} and aal.nii.gz {aal.shape} are not on '
                f'the same grid')
        regions = parse_aal_txt(osp.join(tpl, 'aal.nii.txt'))
        lut = np.zeros(256, dtype=np.uint8)
        for value, name, code in regions:
            lut[value] = aal_region_to_class(name, code)
        present = np.unique(aal)
        unknown = sorted(set(present.tolist()) - {0} -
                         {v for v, _, _ in regions})
        if unknown:
            raise OfflineDataError(
                f'aal.nii.gz has label values {unknown} missing from '
                f'aal.nii.txt')
        labels = lut[aal.astype(np.int64)]

        t1 = t1.astype(np.float32)
        hi = float(np.percentile(t1[t1 > 0], 99.8))
        t1 = np.clip(t1 / hi * 255.0, 0, 255).round().astype(np.uint8)

        z_any = np.nonzero((aal > 0).any(axis=(0, 1)))[0]
        z_lo, z_hi = int(z_any[0]), int(z_any[-1])
        split = aal_blocked_split(z_lo, z_hi)
        for s in ('train', 'val'):
            os.makedirs(osp.join(tmp, 'img_dir', s))
            os.makedirs(osp.join(tmp, 'ann_dir', s))
            for z in split[s]:
                # (x, y) slice -> rows = y (anterior at top), cols = x.
                img = np.ascontiguousarray(t1[:, :, z].T[::-1])
                lab = np.ascontiguousarray(labels[:, :, z].T[::-1])
                name = f'colin27_axial_z{z:03d}.png'
                Image.fromarray(img, mode='L').save(
                    osp.join(tmp, 'img_dir', s, name))
                Image.fromarray(lab, mode='L').save(
                    osp.join(tmp, 'ann_dir', s, name))
        counts = np.bincount(labels[:, :, z_lo:z_hi + 1].ravel(),
                             minlength=len(AAL_CLASSES))
        meta = dict(
            source=MRICRON_DEB,
            volume='ch2.nii.gz + aal.nii.gz (RAS, 1 mm)',
            orientation='axial; rows=posterior..anterior flipped (anterior '
            'top), cols=subject left..right',
            classes=list(AAL_CLASSES),
            intensity_clip=hi,
            split_rule=dict(AAL_SPLIT, z_lo=z_lo, z_hi=z_hi),
            split=split,
            class_voxels=counts.tolist())
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=1)
        return dict(split=split)

    prepare_once('aal_slices', root, build)
    return root
