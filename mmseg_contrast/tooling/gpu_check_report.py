"""Report of ``tools/analysis/gpu_check.py``: the result dict, its table and
its JSON file (``docs/results/gpu_check.json``).

The result (``SCHEMA``)::

    dict(schema, started, elapsed_s, status,        # 'ok' | 'failed'
         env=dict(python, torch, cuda, cudnn, numpy, gpu, ...),
         settings=dict(iters, warmup, sync_iters),
         pytest=dict(status, returncode, summary, duration_s),
         models=[dict(name, config, plain, batch, crop,
                      runs=dict(fp32=dict(plugin=RUN, plain=RUN),
                                fp16=dict(plugin=RUN, plain=RUN)))],
         benchmarks=dict(NAME=dict(status, returncode, duration_s,
                                   command, key_lines)))

    RUN = dict(it_s, ms_per_iter, peak_mib, syncs_per_iter, sync_sites,
               logged_values, final_loss, finite)   # or dict(error=...)

``syncs_per_iter`` counts the host synchronisations of one training
iteration (``torch.cuda.set_sync_debug_mode('warn')``); ``sync_sites``
names where they happen (``file:line`` -> count per iteration).
"""
import json

from ..checkpoint.saving import atomic_write_text

SCHEMA = 'mmseg_contrast.gpu_check/1'
PRECISIONS = ('fp32', 'fp16')
ARMS = ('plugin', 'plain')


def new_result(env, settings, started):
    return dict(schema=SCHEMA, started=started, elapsed_s=None,
                status='running', env=dict(env), settings=dict(settings),
                pytest=None, models=[], benchmarks={})


def overall_status(result):
    """'failed' when a step failed or a measurement raised, else 'ok'."""
    bad = result.get('pytest') and result['pytest'].get('status') in (
        'failed', 'timeout', 'error')
    for model in result.get('models', []):
        for runs in model.get('runs', {}).values():
            bad = bad or any('error' in runs.get(a, {}) for a in ARMS)
        bad = bad or 'error' in model
    for bench in result.get('benchmarks', {}).values():
        bad = bad or bench.get('status') not in ('ok', 'skipped')
    return 'failed' if bad else 'ok'


def write_json(result, paths):
    """Write ``result`` to every path (atomically: temporary + rename)."""
    text = json.dumps(result, indent=2, sort_keys=False) + '\n'
    for path in ([paths] if isinstance(paths, str) else paths):
        atomic_write_text(text, path)


def _num(value, fmt):
    return '-' if value is None else format(value, fmt)


def _ratio(a, b, pct=False):
    if a is None or b is None or not b:
        return '-'
    if pct:
        return f'{100 * (b / a - 1):+.1f}%'
    return f'{a / b:.2f}x'


def model_rows(model):
    """Table rows of one model: one per precision."""
    rows = []
    if 'error' in model:
        return [[model['name'], '-', f"error: {model['error']}"]]
    for prec in PRECISIONS:
        runs = model.get('runs', {}).get(prec)
        if runs is None:
            continue
        p, q = runs.get('plugin', {}), runs.get('plain', {})
        errors = [f'{a}: {runs[a]["error"]}' for a in ARMS
                  if 'error' in runs.get(a, {})]
        if errors:
            rows.append([model['name'], prec, 'error: ' + '; '.join(errors)])
            continue
        rows.append([
            model['name'], prec,
            _num(p.get('it_s'), '.2f'), _num(q.get('it_s'), '.2f'),
            # time per iteration, plugin vs plain
            _ratio(p.get('it_s'), q.get('it_s'), pct=True),
            _num(p.get('peak_mib'), '.0f'), _num(q.get('peak_mib'), '.0f'),
            _ratio(p.get('peak_mib'), q.get('peak_mib')),
            f"{_num(p.get('syncs_per_iter'), 'g')} / "
            f"{_num(q.get('syncs_per_iter'), 'g')}",
        ])
    return rows


HEADER = ['model', 'prec', 'it/s', 'plain it/s', 'time/it', 'peak MiB',
          'plain MiB', 'memory', 'syncs/it']


def format_table(result, top_sites=3):
    """The printed report: the model table (plugin vs its plain
    counterpart), the tests, the benchmarks' key lines and the busiest
    sync sites."""
    rows = [r for m in result.get('models', []) for r in model_rows(m)]
    widths = [max(len(str(r[i])) for r in [HEADER] + rows if len(r) > i)
              for i in range(len(HEADER))]
    lines = []
    env = result.get('env', {})
    lines.append(f"GPU check ({env.get('gpu', '?')}, torch "
                 f"{env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, "
                 f"numpy {env.get('numpy', '?')}): {result.get('status')}")
    fmt_row = '  '.join('{:<%d}' % w if i < 2 else '{:>%d}' % w
                        for i, w in enumerate(widths))
    lines.append(fmt_row.format(*HEADER))
    for r in rows:
        if len(r) == len(HEADER):
            lines.append(fmt_row.format(*r))
        else:
            lines.append(f'{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}')
    lines.append('time/it: the plugin\'s time per iteration vs the plain '
                 'counterpart; memory: peak max_memory_allocated ratio; '
                 'syncs/it: host syncs per training iteration (plugin / '
                 'plain)')
    test = result.get('pytest')
    if test:
        lines.append(f"pytest -m cuda: {test.get('status')} "
                     f"({test.get('summary', '')})")
    for name, bench in result.get('benchmarks', {}).items():
        lines.append(f"{name}: {bench.get('status')}")
        lines.extend('  ' + line for line in bench.get('key_lines', []))
    for model in result.get('models', []):
        run = model.get('runs', {}).get('fp32', {}).get('plugin', {})
        sites = sorted(run.get('sync_sites', {}).items(),
                       key=lambda kv: -kv[1])[:top_sites]
        if sites:
            lines.append(f"syncs of {model['name']} (fp32, per iter): " +
                         ', '.join(f'{s} x{n:g}' for s, n in sites))
    if result.get('elapsed_s') is not None:
        lines.append(f"elapsed {result['elapsed_s']:.0f} s")
    return '\n'.join(lines)
