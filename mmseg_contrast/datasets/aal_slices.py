"""Colin27 T1 MRI slices with AAL labels grouped into lobe x hemisphere.

Data: the Colin27 single-subject T1 template (``ch2.nii.gz``, 181x217x181 at
1 mm, RAS) and the AAL parcellation (``aal.nii.gz``: 116 expert-drawn regions,
same grid) from the Debian package ``mricron-data``. They are turned into 2D
axial PNG slices by
:func:`mmseg_contrast.tooling.offline_data.prepare_aal_slices`.

Class grouping (16 classes). AAL's 116 regions are far too many, too small
and too similar in appearance for a CPU demo, so they are grouped into the
lobes that the AAL authors themselves encode: the third column of
``aal.nii.txt`` is a 4-digit code whose thousands digit is the lobe family
(Tzourio-Mazoyer et al., 2002):

====  ===========================================================  ============
code  AAL regions                                                  class
====  ===========================================================  ============
2xxx  precentral, frontal sup/mid/inf (+orbital, opercular,        frontal
      triangular), rolandic operculum, SMA, olfactory, medial
      frontal, rectus
3xxx  insula                                                       limbic_ins.
4xxx  cingulum ant/mid/post, hippocampus, parahippocampal,         limbic_ins.
      amygdala
5xxx  calcarine, cuneus, lingual, occipital sup/mid/inf, fusiform  occipital
6xxx  postcentral, parietal sup/inf, supramarginal, angular,       parietal
      precuneus, paracentral lobule
7xxx  caudate, putamen, pallidum, thalamus                         subcortical
8xxx  Heschl, temporal sup/mid/inf, temporal poles                 temporal
9xxx  cerebellar hemispheres (crus 1-2, lobules 3-10)              cerebellum
91xx  vermis 1-10 (midline, no hemisphere: ``Vermis_*``)           vermis
====  ===========================================================  ============

(``limbic_ins.``: ``limbic_insula``.)

The insula (a single region per side) joins the limbic family, as in the
common "limbic lobe incl. insula" convention, so that no class is tiny.
Each lateralised family is split by the ``_L`` / ``_R`` suffix of the region
name, giving 7 x 2 + vermis + background = 16 classes. Everything not in AAL
(white matter, CSF, skull, air) is background (0): the atlas covers grey
matter only.

Because left and right are different classes, **horizontal flipping is not a
label-preserving augmentation** for this data set (it would swap hemispheres);
the dataset config uses random resize / crop and photometric jitter only.
"""
import re

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = [
    'AALSliceDataset', 'AAL_CLASSES', 'AAL_PALETTE', 'AAL_LOBE_CODES',
    'aal_region_to_class'
]

#: AAL code family (thousands digit of the code in ``aal.nii.txt``) -> group.
AAL_LOBE_CODES = {
    2: 'frontal',
    3: 'limbic_insula',
    4: 'limbic_insula',
    5: 'occipital',
    6: 'parietal',
    7: 'subcortical',
    8: 'temporal',
    9: 'cerebellum',
}
_GROUPS = ('frontal', 'limbic_insula', 'occipital', 'parietal', 'subcortical',
           'temporal', 'cerebellum')

AAL_CLASSES = ('background', ) + tuple(
    f'{g}_{side}' for g in _GROUPS for side in ('L', 'R')) + ('vermis', )

# One hue per lobe family; the right hemisphere is a lighter shade.
_BASE_COLOURS = {
    'frontal': (220, 50, 50),
    'limbic_insula': (230, 160, 30),
    'occipital': (60, 170, 60),
    'parietal': (50, 90, 220),
    'subcortical': (160, 60, 200),
    'temporal': (30, 180, 190),
    'cerebellum': (190, 120, 80),
}


def _shade(rgb, side):
    if side == 'L':
        return list(rgb)
    return [min(255, c + (255 - c) // 2) for c in rgb]


AAL_PALETTE = [[0, 0, 0]] + [
    _shade(_BASE_COLOURS[g], side) for g in _GROUPS for side in ('L', 'R')
] + [[250, 250, 120]]


def aal_region_to_class(name, code):
    """Map one AAL region (``name``, 4-digit ``code``) to its class index.

    Args:
        name (str): region name from ``aal.nii.txt``, e.g. ``'Insula_L'``.
        code (int | str): AAL code from the same line, e.g. ``3001``.

    Returns:
        int: index into :data:`AAL_CLASSES` (never 0: background is not a
        region).
    """
    code = int(code)
    if name.startswith('Vermis'):
        return AAL_CLASSES.index('vermis')
    family = code // 1000
    if family not in AAL_LOBE_CODES:
        raise ValueError(
            f'AAL region {name!r} has code {code}, whose family {family} is '
            f'not one of {sorted(AAL_LOBE_CODES)}')
    side = re.search(r'_([LR])$', name)
    if side is None:
        raise ValueError(
            f'AAL region {name!r} (code {code}) is lateralised but its name '
            f'does not end in _L or _R')
    return AAL_CLASSES.index(f'{AAL_LOBE_CODES[family]}_{side.group(1)}')


@DATASETS.register_module()
class AALSliceDataset(BaseSegDataset):
    """2D axial Colin27 slices with AAL lobe x hemisphere labels.

    Layout (as written by ``prepare_aal_slices``)::

        data/aal_slices/
            img_dir/{train,val}/colin27_axial_zNNN.png   grey uint8 T1
            ann_dir/{train,val}/colin27_axial_zNNN.png   uint8 class index

    Label 0 is a real class (background / non-grey-matter), so
    ``reduce_zero_label=False``; there are no ignore pixels in the files.
    See the module docstring for the 16 classes.
    """
    METAINFO = dict(classes=AAL_CLASSES, palette=AAL_PALETTE)

    def __init__(self,
                 img_suffix='.png',
                 seg_map_suffix='.png',
                 reduce_zero_label=False,
                 **kwargs):
        if reduce_zero_label:
            raise ValueError(
                'AALSliceDataset: reduce_zero_label must be False (label 0 is '
                'the background class, not an ignore value)')
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=False,
            **kwargs)
