"""Build-time checks of :class:`~.semi_segmentor.SemiSegmentor`'s
``semi_train_cfg`` (kept out of ``semi_segmentor.py``, which is long
enough).

========================  ===============================================
key                       valid values
========================  ===============================================
``sup_weight``            finite, >= 0 (0: no supervised forward)
``unsup_weight``          finite, >= 0 (0: no teacher / unsupervised pass);
                          not both 0
``weak_threshold``        (0, 1]: confidence a pseudo-label needs to count
                          (ReCo's valid pixels, ``'threshold'`` targets)
``strong_threshold``      (0, 1]: confidence counted by ReCo's ratio
                          ``eta`` (a fraction: 97 would zero the loss)
``class_portion``         (0, 1] (1: every pixel of each pseudo-class)
``unsup_weighting``       ``'ratio'``, ``'threshold'``, ``'class_balanced'``
``teacher_mode``          ``'eval'`` or ``'train'``
``reco``                  bool
``concat_forward``        bool
========================  ===============================================

``mix_mode`` / ``count_ignore_as_class`` are checked by ``BatchMixer``,
``unsup_aug`` by ``UnsupBatchAugment``.
"""
from ...options import check_bool, check_finite_nonneg, check_probability

__all__ = ['check_semi_train_cfg']

_OWNER = 'SemiSegmentor'
_PREFIX = 'semi_train_cfg.'


def check_semi_train_cfg(cfg: dict) -> None:
    """Raise ``ValueError`` / ``TypeError`` naming the ``semi_train_cfg``
    key, the value and the valid range for the first invalid entry of the
    complete (defaults filled in) ``cfg``."""
    for key in ('sup_weight', 'unsup_weight'):
        check_finite_nonneg(_OWNER, _PREFIX + key, cfg[key],
                            hint='0 switches the branch off')
    if cfg['sup_weight'] == 0 and cfg['unsup_weight'] == 0:
        raise ValueError(
            f'{_OWNER}: semi_train_cfg.sup_weight=0 and unsup_weight=0 '
            'switch both branches off: every training step would have no '
            'loss; set at least one of them > 0')
    check_probability(
        _OWNER, _PREFIX + 'weak_threshold', cfg['weak_threshold'],
        hint='the teacher confidence a pseudo-label needs to count')
    check_probability(
        _OWNER, _PREFIX + 'strong_threshold', cfg['strong_threshold'],
        hint="the confidence counted by the 'ratio' weighting; a fraction, "
        'not a percent: 97 would multiply the unsupervised loss by 0')
    check_probability(_OWNER, _PREFIX + 'class_portion',
                      cfg['class_portion'])
    if cfg['unsup_weighting'] not in ('ratio', 'threshold',
                                      'class_balanced'):
        raise ValueError(f"{_OWNER}: semi_train_cfg.unsup_weighting must be "
                         f"'ratio', 'threshold' or 'class_balanced', got "
                         f"{cfg['unsup_weighting']!r}")
    if cfg['teacher_mode'] not in ('eval', 'train'):
        raise ValueError(f"{_OWNER}: semi_train_cfg.teacher_mode must be "
                         f"'eval' or 'train', got {cfg['teacher_mode']!r}")
    check_bool(_OWNER, _PREFIX + 'reco', cfg['reco'])
    check_bool(_OWNER, _PREFIX + 'concat_forward', cfg['concat_forward'])
