"""EMA (mean-teacher) update of ``model.teacher`` from ``model.student``."""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_reduce_params, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import Tensor

from mmseg_contrast.datasets.samplers import check_loader_batch_size
from mmseg_contrast.options import (
    check_bool,
    check_optional,
    check_positive_int,
    check_probability,
    check_range,
)

DECAY_SCHEDULES = ('reco', 'constant', 'horizon', 'cosine')


def ema_weight_on_first(decays: Sequence[float], k: int) -> float:
    """Total weight an EMA puts on the first ``k`` students.

    With ``teacher_t = d_t * teacher_{t-1} + (1 - d_t) * student_t`` for the
    updates ``t = 0 .. T-1`` (``T = len(decays)``; ``student_t`` is the
    student after optimiser step ``t``), the teacher after ``T`` updates is
    ``prod_s d_s * teacher_init + sum_t w_t * student_t`` with
    ``w_t = (1 - d_t) * prod_{s > t} d_s``. The weight on the first ``k``
    students telescopes to ``prod_{s=k}^{T-1} d_s - prod_{s=0}^{T-1} d_s``
    (the second term is 0 when ``d_0 = 0``, as in every warm-up schedule).
    """
    if not 0 <= k <= len(decays):
        raise ValueError(f'k must be in [0, {len(decays)}], got {k}')
    return math.prod(float(d) for d in decays[k:]) - math.prod(
        float(d) for d in decays)


def _ema_update(pairs: List[Tuple[Tensor, Tensor]], decay: float) -> None:
    """``t.lerp_(s, 1 - decay)`` (``t.copy_(s)`` for ``decay == 0``) for
    every ``(t, s)`` pair, as multi-tensor ``_foreach`` ops."""
    if not pairs:
        return
    dst = [t for t, _ in pairs]
    if decay == 0.:
        torch._foreach_copy_(dst, [s for _, s in pairs])
    else:
        src = [s.to(t.dtype) for t, s in pairs]
        torch._foreach_lerp_(dst, src, 1. - decay)


@HOOKS.register_module()
class MeanTeacherHook(Hook):
    """Mean-teacher EMA hook (ReCo ``module_list.EMA``, mmdet 3.x
    ``MeanTeacherHook``).

    After every ``interval``-th optimiser step ``t`` (0-based, the runner's
    iteration, so the schedule continues exactly after ``--resume``)::

        teacher <- decay_t * teacher + (1 - decay_t) * student

    with ``decay_t`` from ``decay_schedule`` (``T`` = ``max_iters``, the
    runner's unless given):

    * ``'reco'`` (default, ReCo): ``min(1 - 1/(t+1), max_decay)``; the
      teacher is the running mean of the students until
      ``t + 1 = 1 / (1 - max_decay)`` (100 for 0.99), then an EMA with time
      constant ``1 / (1 - max_decay)`` (100 iterations);
    * ``'constant'`` (mmdet's ``momentum = 1 - decay``): ``max_decay``;
    * ``'horizon'``: ``min(1 - 1/(t+1), max_decay, 1 - interval /
      (horizon * T))``: ReCo's schedule whose EMA window never exceeds the
      fraction ``horizon`` of the schedule. On ReCo's 40k iterations with
      ``horizon=0.1`` the cap is 0.99975, so 0.99 wins and nothing changes;
      on a 200-iteration demo the window is 20 iterations (decay 0.95);
    * ``'cosine'`` (BYOL's target network; mmpretrain ``CosineEMA`` with
      ``end_momentum=0``, in decay terms, no warm-up):
      ``1 - (1 - max_decay) * (cos(pi t / T) + 1) / 2``, the decay ramps
      from ``max_decay`` up to 1 at the end: the teacher moves less and
      less and freezes. Meant for long schedules; on a short one it is the
      opposite of what a mean teacher needs (with 0.99 and ``T = 200`` the
      initial teacher still weighs 0.36 at the end, the first 100 students
      another 0.47). A ReCo-style warm-up
      would not help: ``1 - 1/(t+1)`` stays below the cosine decay for most
      of the run, which makes the teacher the uniform mean of all
      students.

    **How much of the teacher is old students.** After ``T`` updates the
    teacher weighs the first ``k`` students by ``prod_{s=k}^{T-1} d_s``
    (:func:`ema_weight_on_first`). For ``'reco'`` with ``K = 1/(1 - d)``
    iterations of running mean and ``T >= K``: ``d^(T-k)`` for ``k >= K``
    and ``(k / K) * d^(T-K)`` for ``k < K``. With ``d = 0.99`` and
    ``T = 200`` the first 100 iterations still weigh ``0.99^100 = 0.366``:
    a 200-iteration teacher is a third made of the students of the first
    half, which is why it scores below the student on short schedules. With
    ``'horizon'`` and ``horizon=0.1`` (``d = 0.95``) that weight is
    ``0.95^100 = 0.006``; generally the weight on everything older than
    ``m`` windows is ``~exp(-m)``.

    The teacher lives inside the model (``SemiSegmentor.teacher``), so its
    weights ride in the checkpoint and ``--resume`` restores them; the hook
    itself holds no state.

    Args (checked when built, :mod:`mmseg_contrast.options`):
        max_decay (float): upper bound / constant value / cosine start of
            the decay, in [0, 1] (0: the teacher is a copy of the student;
            1 with ``'reco'`` / ``'horizon'``: the running mean of all
            students); in [0, 1) for ``'constant'`` / ``'cosine'``, where 1
            would never move the teacher. Defaults to 0.99 (ReCo).
        decay_schedule (str): one of ``DECAY_SCHEDULES`` (see above).
            Defaults to 'reco'.
        horizon (float, optional): for ``'horizon'`` only: the EMA window
            as a fraction of ``max_iters``, in (0, 1]; e.g. 0.1.
        max_iters (int, optional): schedule length (>= 1) for
            ``'horizon'`` / ``'cosine'``; defaults to the runner's
            ``max_iters``.
        interval (int): update every ``interval`` (>= 1) iterations.
        skip_buffer (bool): if True (ReCo) only parameters are averaged and
            the teacher keeps its own buffers. Defaults to False: floating
            buffers (BN running statistics) are averaged too and integer
            buffers (``num_batches_tracked``) copied, which is what a teacher
            kept in eval mode needs (ReCo runs its teacher in train mode so
            that its BN statistics evolve by themselves).

    ``before_train`` also checks that a :class:`MultiSourceSampler` train
    loader batches exactly the sampler's ``batch_size``
    (:func:`~mmseg_contrast.datasets.samplers.check_loader_batch_size`).

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
                 horizon: Optional[float] = None,
                 max_iters: Optional[int] = None,
                 interval: int = 1,
                 skip_buffer: bool = False) -> None:
        owner = type(self).__name__
        if decay_schedule not in DECAY_SCHEDULES:
            raise ValueError(f'decay_schedule must be one of '
                             f'{DECAY_SCHEDULES}, got {decay_schedule!r}')
        frozen = decay_schedule in ('constant', 'cosine')
        check_range(owner, 'max_decay', max_decay, 0, 1, high_open=frozen,
                    hint=f'with decay_schedule={decay_schedule!r} a decay '
                    'of 1 never moves the teacher' if frozen else '')
        if decay_schedule == 'horizon':
            if horizon is None:
                raise ValueError(
                    f"decay_schedule='horizon' needs horizon in (0, 1] (the "
                    f'EMA window as a fraction of max_iters, e.g. 0.1), got '
                    f'{horizon!r}')
            check_probability(owner, 'horizon', horizon,
                              hint='the EMA window as a fraction of '
                              'max_iters, e.g. 0.1')
        elif horizon is not None:
            raise ValueError(f"horizon={horizon} is only used by "
                             f"decay_schedule='horizon', not "
                             f'{decay_schedule!r}')
        check_optional(check_positive_int, owner, 'max_iters', max_iters)
        check_positive_int(owner, 'interval', interval)
        check_bool(owner, 'skip_buffer', skip_buffer)
        self.max_decay = max_decay
        self.decay_schedule = decay_schedule
        self.horizon = horizon
        self.max_iters = max_iters
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
        """The decay of the update after optimiser step ``t`` (0-based)."""
        if self.decay_schedule == 'constant':
            return self.max_decay
        warm = 1. - 1. / (t + 1)
        if self.decay_schedule == 'reco':
            return min(warm, self.max_decay)
        if self.max_iters is None:
            raise RuntimeError(
                f"MeanTeacherHook: decay_schedule={self.decay_schedule!r} "
                'needs the schedule length: pass max_iters=... or use the '
                'hook inside a Runner (it reads runner.max_iters)')
        T = self.max_iters
        if self.decay_schedule == 'horizon':
            window = self.horizon * T / self.interval  # in updates
            cap = max(0., 1. - 1. / window) if window > 0 else 0.
            return min(warm, self.max_decay, cap)
        ramp = (math.cos(math.pi * min(t, T) / T) + 1.) / 2.
        return 1. - (1. - self.max_decay) * ramp

    def weight_on_first(self, k: int, num_iters: int) -> float:
        """Weight of the first ``k`` students in the teacher after
        ``num_iters`` iterations under this schedule (every ``interval``-th
        iteration updates; see :func:`ema_weight_on_first`)."""
        decays = [self.decay(t) for t in range(num_iters)
                  if (t + 1) % self.interval == 0]
        first = sum(1 for t in range(k) if (t + 1) % self.interval == 0)
        return ema_weight_on_first(decays, first)

    def before_train(self, runner) -> None:
        model = self._unwrap(runner.model)
        check_loader_batch_size(getattr(runner, 'train_dataloader', None))
        if self.max_iters is None and self.decay_schedule in ('horizon',
                                                              'cosine'):
            self.max_iters = int(runner.max_iters)
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
        """``teacher = decay * teacher + (1 - decay) * student``.

        Multi-tensor: one ``torch._foreach_lerp_`` (or ``_foreach_copy_``
        for ``decay == 0`` and integer buffers) over all the tensors instead
        of one ``lerp_`` launch per tensor; the same values as the
        per-tensor loop (the same ``lerp`` formula), no host sync.
        """
        student = dict(model.student.named_parameters())
        pairs = [(t, student[name])
                 for name, t in model.teacher.named_parameters()]
        _ema_update(pairs, decay)
        if self.skip_buffer:
            return
        s_buffers = dict(model.student.named_buffers())
        bufs = [(t, s_buffers[name])
                for name, t in model.teacher.named_buffers()]
        _ema_update([p for p in bufs if p[0].is_floating_point()], decay)
        _ema_update([p for p in bufs if not p[0].is_floating_point()], 0.)
        if get_world_size() > 1:
            floats = [b for b in model.teacher.buffers()
                      if b.is_floating_point()]
            if floats:
                all_reduce_params(floats, op='mean')
