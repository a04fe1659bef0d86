"""Does a checkpoint fit the model it is loaded into?

mmengine's ``load_state_dict`` only logs missing keys and shape mismatches,
so a checkpoint of another model, or of the same architecture at another
width, "loads" and the model keeps its random weights.
:func:`check_checkpoint_matches` (wrapped around mmengine's
``load_state_dict`` by :func:`mmseg_contrast.checkpoint.safety.
install_checkpoint_allowlist`) counts the model's floating-point tensors
(parameters and float buffers such as BN statistics) the state dict would
actually load, i.e. same name and same shape:

* **none** loads: :class:`CheckpointMismatchError` - the state dict shares
  no name with the model (with the ``prefix=`` hint where the keys differ
  by a leading module name), every shared name has another shape, or only
  integer buffers (``num_batches_tracked``) fit;
* **less than half** load: a :class:`CheckpointMismatchWarning` with the
  counts (``N of M floating-point parameters loaded``);
* otherwise (e.g. fine-tuning into another number of classes, where only
  the classifier differs) only mmengine's usual log lines.
"""
import warnings

import torch
from mmengine.model import BaseTTAModel, is_model_wrapper

from .errors import CheckpointMismatchError, CheckpointMismatchWarning

__all__ = ['check_checkpoint_matches', 'last_loaded']

#: name of the last checkpoint read by the safe loader (named in errors
#: raised right after mmengine loads it)
last_loaded = {'name': None}


def _unwrap(module):
    while is_model_wrapper(module) or isinstance(module, BaseTTAModel):
        module = module.module
    return module


def _prefix_hint(state_dict, own):
    for k in state_dict:
        head, _, rest = k.partition('.')
        if rest in own:
            return (f" Its keys carry a '{head}.' prefix: to load a part "
                    f"of a full-model checkpoint into this sub-module use "
                    f"init_cfg=dict(type='Pretrained', checkpoint=..., "
                    f"prefix='{head}.').")
    for k in own:
        head, _, rest = k.partition('.')
        if rest in state_dict:
            return (f" It looks like the weights of the '{head}' "
                    f"sub-module alone: load it with model.{head}."
                    f"init_cfg=dict(type='Pretrained', checkpoint=...) "
                    f"instead of load_from / tools/test.py.")
    return ''


def _shape(v):
    return tuple(v.shape) if hasattr(v, 'shape') else None


def _counts(own, state_dict):
    """``(float tensors of the model, how many load, shared names, shared
    float names, first shape mismatch)``."""
    floats = [k for k, v in own.items()
              if isinstance(v, torch.Tensor) and v.is_floating_point()]
    loaded, shared_floats, mismatch = 0, 0, None
    for k in floats:
        if k not in state_dict:
            continue
        shared_floats += 1
        if _shape(state_dict[k]) == tuple(own[k].shape):
            loaded += 1
        elif mismatch is None:
            mismatch = k
    shared = sum(1 for k in state_dict if k in own)
    return floats, loaded, shared, shared_floats, mismatch


def check_checkpoint_matches(module, state_dict, name=None):
    """Raise :class:`CheckpointMismatchError` if ``state_dict`` would load
    no floating-point tensor of ``module``; warn
    (:class:`CheckpointMismatchWarning`) if it loads less than half of them.

    ``name`` defaults to the last file read by the safe loader. The message
    shows a key of each side and, when the keys differ only by a leading
    prefix, the ``prefix=`` / ``init_cfg`` fix.
    """
    module = _unwrap(module)
    own = module.state_dict()
    if not own:
        return
    what = f'Checkpoint {name or last_loaded["name"] or "(in memory)"}'
    where = f'{type(module).__name__}'
    if not state_dict:
        raise CheckpointMismatchError(
            f'{what} holds no weights (an empty state_dict) for {where}: '
            f'the model would keep its random initialisation.')
    floats, loaded, shared, shared_floats, mismatch = _counts(own,
                                                              state_dict)
    if shared == 0:
        ck, mk = next(iter(state_dict)), next(iter(own))
        raise CheckpointMismatchError(
            f'{what} shares no parameter name with the model ({where}): '
            f'nothing would be loaded and the model would keep its random '
            f'weights. Checkpoint keys look like {ck!r}, the model\'s like '
            f'{mk!r}; is it the checkpoint of this config?'
            f'{_prefix_hint(state_dict, own)}')
    if not floats or loaded * 2 >= len(floats):
        return
    counts = (f'{loaded} of {len(floats)} floating-point parameters '
              f'loaded')
    if loaded == 0:
        if mismatch is not None:
            why = (f'every one of the {shared_floats} floating-point '
                   f'tensors it shares with the model has another shape '
                   f'(e.g. {mismatch!r}: '
                   f'checkpoint {_shape(state_dict[mismatch])}, model '
                   f'{tuple(own[mismatch].shape)}), as for the same '
                   f'architecture at another width or depth')
        else:
            why = (f'the {shared} names it shares with the model are '
                   f'integer buffers only (e.g. num_batches_tracked)')
        raise CheckpointMismatchError(
            f'{what} would load no floating-point parameter of the model '
            f'({where}; {counts}): {why}. The model would keep its random '
            f'weights; is it the checkpoint of this config?'
            f'{_prefix_hint(state_dict, own)}')
    warnings.warn(
        f'{what}: only {counts} into {where}; the others keep their '
        f'initialisation (mmengine lists the missing and mismatched '
        f'keys). Is it the checkpoint of this config?',
        CheckpointMismatchWarning, stacklevel=3)
