"""EMA (mean-teacher) update of ``model.teacher`` from ``model.student``."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.dist import all_reduce_params, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS


@HOOKS.register_module()
class MeanTeacherHook(Hook):
    """Mean-teacher EMA hook (ReCo ``module_list.EMA``, mmdet 3.x
    ``MeanTeacherHook``).

    After every ``interval``-th optimiser step ``t`` (0-based, the runner's
    iteration, so the schedule continues exactly after ``--resume``)::

        decay_t  = min(1 - 1 / (t + 1), max_decay)     # ReCo, max_decay=0.99
        teacher <- decay_t * teacher + (1 - decay_t) * student

    With ``decay_schedule='constant'`` the decay is ``max_decay`` throughout
    (mmdet's ``momentum = 1 - decay``).

    The teacher lives inside the model (``SemiSegmentor.teacher``), so its
    weights ride in the checkpoint and ``--resume`` restores them; the hook
    itself holds no state.

    Args:
        max_decay (float): upper bound / constant value of the decay.
            Defaults to 0.99 (ReCo).
        decay_schedule (str): 'reco' (``min(1 - 1/(t+1), max_decay)``) or
            'constant'.
        interval (int): update every ``interval`` iterations.
        skip_buffer (bool): if True (ReCo) only parameters are averaged and
            the teacher keeps its own buffers. Defaults to False: floating
            buffers (BN running statistics) are averaged too and integer
            buffers (``num_batches_tracked``) copied, which is what a teacher
            kept in eval mode needs (ReCo runs its teacher in train mode so
            that its BN statistics evolve by themselves).

    Under DDP the student's parameters are identical on every rank, so the
    teachers' parameters stay identical; the student's BN running statistics
    are not (each rank updates them from its own batch until DDP's next
    buffer broadcast), so the teacher's floating buffers are averaged over
    the ranks after each update (one coalesced all-reduce, as mmengine's
    ``SyncBuffersHook``) to keep the teachers identical.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 max_decay: float = 0.99,
                 decay_schedule: str = 'reco',
                 interval: int = 1,
                 skip_buffer: bool = False) -> None:
        if not 0. <= max_decay <= 1.:
            raise ValueError(f'max_decay must be in [0, 1], got {max_decay}')
        if decay_schedule not in ('reco', 'constant'):
            raise ValueError(f"decay_schedule must be 'reco' or 'constant', "
                             f'got {decay_schedule!r}')
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.max_decay = max_decay
        self.decay_schedule = decay_schedule
        self.interval = interval
        self.skip_buffer = skip_buffer

    @staticmethod
    def _unwrap(model: nn.Module) -> nn.Module:
        if is_model_wrapper(model):
            model = model.module
        if not (hasattr(model, 'teacher') and hasattr(model, 'student')):
            raise TypeError(
                f'MeanTeacherHook needs a model with .teacher and .student '
                f'(e.g. SemiSegmentor), got {type(model).__name__}')
        return model

    def decay(self, t: int) -> float:
        if self.decay_schedule == 'constant':
            return self.max_decay
        return min(1. - 1. / (t + 1), self.max_decay)

    def before_train(self, runner) -> None:
        model = self._unwrap(runner.model)
        # a fresh run starts with teacher == student (after init / load_from)
        if runner.iter == 0:
            self.momentum_update(model, 0.)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if (runner.iter + 1) % self.interval != 0:
            return
        model = self._unwrap(runner.model)
        decay = self.decay(runner.iter)
        self.momentum_update(model, decay)
        runner.message_hub.update_scalar('train/teacher_decay', decay)

    @torch.no_grad()
    def momentum_update(self, model: nn.Module, decay: float) -> None:
        """``teacher = decay * teacher + (1 - decay) * student``."""
        student = dict(model.student.named_parameters())
        for name, t_param in model.teacher.named_parameters():
            s_param = student[name]
            if decay == 0.:
                t_param.copy_(s_param)
            else:
                t_param.lerp_(s_param.to(t_param.dtype), 1. - decay)
        if self.skip_buffer:
            return
        s_buffers = dict(model.student.named_buffers())
        for name, t_buf in model.teacher.named_buffers():
            s_buf = s_buffers[name]
            if t_buf.is_floating_point() and decay != 0.:
                t_buf.lerp_(s_buf.to(t_buf.dtype), 1. - decay)
            else:
                t_buf.copy_(s_buf)
        if get_world_size() > 1:
            floats = [b for b in model.teacher.buffers()
                      if b.is_floating_point()]
            if floats:
                all_reduce_params(floats, op='mean')
