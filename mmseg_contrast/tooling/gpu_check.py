"""``tools/analysis/gpu_check.py`` (``make gpu-check``) once its venv is set
up: the GPU check of the plugin, in one command.

1. ``pytest -m cuda`` (the tests parametrised over ``tests/helpers/
   devices.DEVICES``);
2. per model of :data:`CASES`, fp32 and AMP fp16: iterations/s, peak
   memory and host syncs of a training iteration of the plugin's config
   against its plain counterpart (:func:`plain_config`: the same model
   without the plugin's terms), synthetic data of the real crop size
   (:mod:`.gpu_check_measure`);
3. ``tools/analysis/benchmark_contrast.py`` and ``benchmark_reco.py`` with
   ``--device cuda``.

The result (:mod:`.gpu_check_report`) is printed as a table and written to
``docs/results/gpu_check.json`` after every step (a run cut short keeps
what it measured). Pretrained weights are never loaded (no network there).
"""
import copy
import inspect
import os
import os.path as osp
import platform
import re
import subprocess
import sys
import time
from typing import NamedTuple, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import HOOKS, MODELS

from mmseg_contrast.models.decode_heads.aux_embedding_mixin import (
    AuxEmbeddingMixin,
)

from . import gpu_check_measure as gm
from . import gpu_check_report as report

PKG = 'mmseg_contrast'
#: hooks that only serve the plugin's terms (dropped from the plain config)
TERM_HOOKS = ('ContrastWarmupHook', 'PixelMemoryBankHook')


class Case(NamedTuple):
    name: str
    config: str
    plain: str  # what the plain counterpart is
    labelled: int
    unlabelled: int = 0


CASES = (
    Case('deeplabv3_r101_contrast',
         'configs/pixel_contrast/deeplabv3_r101-d8_contrast_4xb2-40k_'
         'cityscapes-512x1024.py', 'ASPPHead (mmseg DeepLabV3-R101)', 2),
    Case('fcn_hr48_contrast_mem',
         'configs/pixel_contrast/fcn_hr48_contrast-mem_4xb2-40k_cityscapes-'
         '512x1024.py', 'FCNHead (mmseg HRNet-W48), no bank', 2),
    Case('ocrnet_hr48_contrast',
         'configs/pixel_contrast/ocrnet_hr48_contrast_4xb2-40k_cityscapes-'
         '512x1024.py', 'OCRHead (mmseg OCRNet-HR48)', 2),
    Case('reco_semi_deeplabv3plus_r101',
         'configs/reco/reco-classmix_deeplabv3plus_r101_1xb10+10-40k_'
         'voc12aug-60labels-321x321.py',
         'mean teacher + ClassMix, DepthwiseSeparableASPPHead (no ReCo)',
         10, 10),
)


# ------------------------------------------------------------------ configs
def _walk(obj, fn):
    """Apply ``fn`` to every dict of a nested config (bottom-up)."""
    if isinstance(obj, dict):
        return fn({k: _walk(v, fn) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return type(obj)(_walk(v, fn) for v in obj)
    return obj


def config_types(obj):
    """Every ``type`` name in a nested config."""
    found = []
    _walk(obj, lambda d: (found.append(d['type'])
                          if isinstance(d.get('type'), str) else None) or d)
    return found


def _lookup(type_name):
    for registry in (MODELS, HOOKS):
        cls = registry.get(type_name)
        if cls is not None:
            return cls
    return None


def plugin_types(obj):
    """The ``type`` names of a nested config that this plugin registers."""
    out = []
    for name in config_types(obj):
        cls = _lookup(name)
        if cls is not None and cls.__module__.split('.')[0] == PKG:
            out.append(name)
    return sorted(set(out))


def stock_head(type_name) -> Optional[Tuple[str, Tuple[str, ...]]]:
    """``(stock head type, the plugin's head arguments)`` of a head that
    adds an embedding term to a stock head (``ContrastASPPHead`` ->
    ``ASPPHead``; ``proj_channels``, ``contrast_loss``, ...), or None."""
    cls = MODELS.get(type_name)
    if not (inspect.isclass(cls) and issubclass(cls, AuxEmbeddingMixin)):
        return None
    args = []
    for klass in cls.__mro__:
        if (issubclass(klass, AuxEmbeddingMixin)
                and '__init__' in vars(klass)):
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) \
                        and p.name != 'self':
                    args.append(p.name)
    for base in cls.__mro__[1:]:
        if issubclass(base, AuxEmbeddingMixin):
            continue
        if MODELS.get(base.__name__) is base:
            return base.__name__, tuple(args)
    raise ValueError(f'{type_name}: no registered stock head among its '
                     f'bases {[b.__name__ for b in cls.__mro__]}')


def _plain_head(d):
    stock = stock_head(d['type']) if isinstance(d.get('type'), str) else None
    if stock is None:
        return d
    name, args = stock
    return {**{k: v for k, v in d.items() if k not in args}, 'type': name}


def _no_pretrained(d):
    d = dict(d)
    if 'pretrained' in d:
        d['pretrained'] = None
    init = d.get('init_cfg')
    inits = init if isinstance(init, (list, tuple)) else [init]
    if any(isinstance(i, dict) and i.get('type') == 'Pretrained'
           for i in inits):
        d['init_cfg'] = None
    return d


def strip_pretrained(model_cfg):
    """``pretrained=None`` and no ``Pretrained`` ``init_cfg`` anywhere."""
    return _walk(_to_dict(model_cfg), _no_pretrained)


def _to_dict(obj):
    return obj.to_dict() if hasattr(obj, 'to_dict') else copy.deepcopy(obj)


def plain_config(cfg):
    """``(model, custom_hooks)`` of the plain counterpart of ``cfg``: every
    plugin head becomes its stock head without the plugin's arguments
    (projection, contrast / ReCo loss, memory bank) and the hooks that only
    serve those terms are dropped. A semi-supervised config stays a mean
    teacher (``SemiSegmentor`` + ``MeanTeacherHook``) without ReCo.
    Pretrained weights are stripped."""
    model = strip_pretrained(_walk(_to_dict(cfg.model), _plain_head))
    hooks = [_to_dict(h) for h in cfg.get('custom_hooks', [])
             if str(h['type']).split('.')[-1] not in TERM_HOOKS]
    return model, hooks


def plugin_config(cfg):
    """``(model, custom_hooks)`` of ``cfg`` itself, pretrained stripped."""
    return (strip_pretrained(cfg.model),
            [_to_dict(h) for h in cfg.get('custom_hooks', [])])


# ---------------------------------------------------------------- the steps
def environment():
    import numpy
    env = dict(python=platform.python_version(), torch=torch.__version__,
               cuda=torch.version.cuda,
               cudnn=torch.backends.cudnn.version(), numpy=numpy.__version__)
    for mod in ('mmengine', 'mmcv', 'mmseg', 'mmpretrain'):
        env[mod] = __import__(mod).__version__
    if torch.cuda.is_available():
        prop = torch.cuda.get_device_properties(0)
        env.update(gpu=prop.name, gpu_mib=prop.total_memory // 2**20,
                   capability='.'.join(map(str, (prop.major, prop.minor))))
    return env


def run_pytest(repo, timeout_s=180, python=sys.executable):
    """``pytest -m cuda`` over ``tests/`` (plugins of the image not
    loaded: only pytest-timeout)."""
    cmd = [python, '-m', 'pytest', '-m', 'cuda', '-q', '-p',
           'no:cacheprovider', '-p', 'pytest_timeout', 'tests']
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD='1')
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True,
                             text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return dict(status='timeout', returncode=None, duration_s=timeout_s,
                    summary=f'killed after {timeout_s} s')
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    summary = lines[-1].strip('= ') if lines else ''
    status = {0: 'passed', 5: 'no cuda tests'}.get(res.returncode, 'failed')
    out = dict(status=status, returncode=res.returncode, summary=summary,
               duration_s=time.perf_counter() - t0)
    if status == 'failed':
        out['output_tail'] = (res.stdout + res.stderr)[-4000:]
    return out


#: the lines of the benchmarks' output kept in the report
KEY_LINE = re.compile(r'speed-up|ratio|\|diff\||overhead|device=')
BENCHMARKS = {
    'benchmark_contrast': ['tools/analysis/benchmark_contrast.py',
                           '--device', 'cuda', '--train-step'],
    'benchmark_reco': ['tools/analysis/benchmark_reco.py', '--device',
                       'cuda'],
}


def run_benchmark(repo, name, timeout_s=150, python=sys.executable):
    cmd = [python] + BENCHMARKS[name]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True,
                             timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return dict(status='timeout', returncode=None, command=cmd[1:],
                    duration_s=timeout_s, key_lines=[])
    out = dict(status='ok' if res.returncode == 0 else 'failed',
               returncode=res.returncode, command=cmd[1:],
               duration_s=time.perf_counter() - t0,
               key_lines=[ln.strip() for ln in res.stdout.splitlines()
                          if KEY_LINE.search(ln)])
    if res.returncode:
        out['output_tail'] = (res.stdout + res.stderr)[-4000:]
    return out


def measure_case(repo, case, device, precisions, iters, warmup, sync_iters,
                 deadline=None):
    """The runs of one case; a run that raises is recorded as an error,
    a run past ``deadline`` (``time.monotonic()``) as skipped."""
    cfg = Config.fromfile(osp.join(repo, case.config))
    size = tuple(cfg.crop_size)
    head = cfg.model.get('segmentor', cfg.model).decode_head
    num_classes = (head[-1] if isinstance(head, (list, tuple))
                   else head).num_classes
    batch = gm.synthetic_batch(size, num_classes, case.labelled,
                               case.unlabelled, device=device)
    arms = dict(plugin=plugin_config(cfg), plain=plain_config(cfg))
    bench = cfg.get('env_cfg', {}).get('cudnn_benchmark', False)
    entry = dict(
        name=case.name, config=case.config, plain=case.plain,
        batch=(f'{case.labelled}+{case.unlabelled}' if case.unlabelled
               else str(case.labelled)),
        crop=list(size), runs={})
    for prec in precisions:
        entry['runs'][prec] = {}
        for arm, (model_cfg, hooks) in arms.items():
            if deadline is not None and time.monotonic() > deadline:
                entry['runs'][prec][arm] = dict(error='skipped: time budget')
                continue
            try:
                entry['runs'][prec][arm] = gm.measure(
                    model_cfg, cfg.optim_wrapper, hooks, batch, device,
                    prec, iters=iters, warmup=warmup, sync_iters=sync_iters,
                    cudnn_benchmark=bench)
            except Exception as exc:  # recorded, the check goes on
                entry['runs'][prec][arm] = dict(
                    error=f'{type(exc).__name__}: {exc}'[:500])
    return entry


def run_checks(repo, outs, cases=CASES, precisions=report.PRECISIONS,
               iters=20, warmup=3, sync_iters=2, budget_s=420,
               skip=(), log=print, device='cuda'):
    """All steps within about ``budget_s`` seconds (pytest at most 150 s,
    the models until 90 s before the end, the benchmarks in what is left);
    returns the result (also written to every path of ``outs``)."""
    init_default_scope('mmseg')
    t_start = time.monotonic()
    end = t_start + budget_s
    result = report.new_result(
        environment(), dict(iters=iters, warmup=warmup,
                            sync_iters=sync_iters, budget_s=budget_s),
        time.strftime('%Y-%m-%dT%H:%M:%S'))

    def save():
        result['elapsed_s'] = time.monotonic() - t_start
        result['status'] = report.overall_status(result)
        report.write_json(result, outs)

    if 'pytest' not in skip:
        log('[gpu_check] pytest -m cuda')
        result['pytest'] = run_pytest(repo, timeout_s=150)
        log(f"[gpu_check]   {result['pytest']['status']}: "
            f"{result['pytest']['summary']}")
        save()
    if 'models' not in skip:
        # every model in fp32 first, then fp16: a run short of time loses
        # the second precision, not the last models
        entries = {}
        for prec in precisions:
            for case in cases:
                log(f'[gpu_check] {case.name} {prec}')
                try:
                    part = measure_case(repo, case, device, (prec, ), iters,
                                        warmup, sync_iters,
                                        deadline=end - 90)
                except Exception as exc:  # e.g. the config does not load
                    part = dict(name=case.name, config=case.config,
                                error=f'{type(exc).__name__}: {exc}'[:500])
                entry = entries.get(case.name)
                if entry is None:
                    entry = entries[case.name] = part
                    result['models'].append(entry)
                elif 'error' in part:
                    entry.setdefault('runs', {})[prec] = {
                        arm: dict(error=part['error'])
                        for arm in report.ARMS}
                elif 'error' not in entry:
                    entry['runs'].update(part['runs'])
                save()
                for row in report.model_rows(dict(part)):
                    log('[gpu_check]   ' + '  '.join(map(str, row)))
    if 'benchmarks' not in skip:
        for name in BENCHMARKS:
            left = end - time.monotonic()
            if left < 20:
                result['benchmarks'][name] = dict(
                    status='skipped', key_lines=['time budget'])
                continue
            log(f'[gpu_check] {name}')
            result['benchmarks'][name] = run_benchmark(
                repo, name, timeout_s=min(150, left))
            save()
    save()
    return result
