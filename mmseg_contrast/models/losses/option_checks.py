"""Build-time checks of :class:`~.reco_loss.ReCoLoss`'s options (kept out
of ``reco_loss.py``, which is long enough); the ranges are stated in the
class docstring."""
from ...options import (
    check_finite_nonneg,
    check_int,
    check_optional,
    check_positive,
    check_positive_int,
    check_probability,
)

__all__ = ['check_reco_loss_options']


def check_reco_loss_options(owner: str, temperature, num_queries,
                            num_negatives, strong_threshold, ignore_index,
                            loss_weight, eps, max_chunk_elements) -> None:
    """Raise ``ValueError`` / ``TypeError`` naming ``owner``, the option,
    the value and the valid range for the first invalid option."""
    check_positive(owner, 'temperature', temperature)
    check_positive_int(owner, 'num_queries', num_queries)
    check_positive_int(owner, 'num_negatives', num_negatives)
    check_probability(
        owner, 'strong_threshold', strong_threshold,
        hint='a pixel is a hard query when the probability of its own label '
        'is below it: 0 or less selects no query and gives a zero loss, '
        '1 makes almost every pixel a query; 97 is not a percentage here, '
        'use 0.97')
    check_int(owner, 'ignore_index', ignore_index)
    check_finite_nonneg(owner, 'loss_weight', loss_weight)
    check_positive(owner, 'eps', eps)
    check_optional(check_positive_int, owner, 'max_chunk_elements',
                   max_chunk_elements)
