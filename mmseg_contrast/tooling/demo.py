"""The first-run demo: a baseline and a method on the same data, seed and
iterations, trained, evaluated and printed side by side
(``tools/run_demo.py``, ``make demo``).

Each pair is one comparison of the accuracy suite (``configs/bench``,
``docs/results/accuracy_suite.json``) at its seed-0 protocol, so the demo's
single-seed difference is shown next to the suite's multi-seed result.
"""
import json
import os
import os.path as osp
import re
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from .compare.launch import stream_to_log
from .compare.records import write_json

__all__ = [
    'REPO', 'DemoPair', 'PAIRS', 'DENSECL_PAIR', 'parse_metrics',
    'parse_progress', 'run_logged', 'train_and_test', 'suite_result',
    'suite_summary', 'summary_lines', 'write_summary', 'Progress'
]

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SUITE_JSON = osp.join(REPO, 'docs', 'results', 'accuracy_suite.json')


@dataclass(frozen=True)
class DemoPair:
    """A baseline config, a method config and the suite comparison that
    measured them over several seeds."""
    title: str
    baseline: str
    method: str
    comparison: str
    baseline_name: str = 'baseline'
    method_name: str = 'method'
    evaluated_on: str = 'the test split of the configs'


_FASHION_TEST = 'Fashion-canvas test split, 500 canvases'
PAIRS: Dict[str, DemoPair] = {
    'contrast': DemoPair(
        'CE-only DeepLabV3 vs + pixel contrast (Fashion canvas, 20 labelled '
        'images)',
        'configs/bench/deeplabv3_mnv2_sup-only_20lab-fashion_cpu.py',
        'configs/bench/deeplabv3_mnv2_contrast_20lab-fashion_cpu.py',
        'contrast_vs_ce', 'CE only', '+ pixel contrast', _FASHION_TEST),
    'reco_semi': DemoPair(
        'mean teacher vs + ReCo (semi-supervised, Fashion canvas, 100 '
        'labelled + 1900 unlabelled images)',
        'configs/bench/deeplabv3_mnv2_meanteacher-classmix_100lab-fashion_'
        'cpu.py',
        'configs/bench/deeplabv3_mnv2_reco-classmix_100lab-fashion_cpu.py',
        'semi_reco_vs_semi', 'mean teacher', '+ ReCo', _FASHION_TEST),
}
#: ``tools/run_densecl_demo.py``'s fine-tuning pair (its own work flow)
DENSECL_PAIR = DemoPair(
    'random init vs DenseCL pre-training (AAL slices)',
    'configs/densecl/deeplabv3_mnv2_random-init_aal_cpu.py',
    'configs/densecl/deeplabv3_mnv2_densecl-aal-pre_aal_cpu.py',
    'densecl_vs_random', 'random init', '+ DenseCL pre-training',
    'the AAL val slices')

_METRIC_RE = re.compile(r'\b(aAcc|mIoU|mAcc):\s*([0-9]+(?:\.[0-9]+)?)')
_PROGRESS_RE = re.compile(
    r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\].*?\beta:\s*([0-9:]+(?: day[s]?, '
    r'[0-9:]+)?)')


def parse_metrics(text: str) -> Dict[str, float]:
    """Last ``aAcc`` / ``mIoU`` / ``mAcc`` values logged in ``text``."""
    found = {}
    for name, value in _METRIC_RE.findall(text):
        found[name] = float(value)
    return found


def parse_progress(line: str):
    """``(iteration, max_iters, eta seconds)`` of an mmengine training log
    line, or None."""
    m = _PROGRESS_RE.search(line)
    if m is None:
        return None
    eta, days = m.group(3), 0
    if 'day' in eta:
        d, _, eta = eta.partition(',')
        days = int(d.split()[0])
    parts = [int(p) for p in eta.strip().split(':')]
    secs = 0
    for p in parts:
        secs = secs * 60 + p
    return int(m.group(1)), int(m.group(2)), secs + days * 86400


def _clock(secs: float) -> str:
    secs = int(round(max(secs, 0)))
    return f'{secs // 60}:{secs % 60:02d}'


def run_logged(cmd: List[str], log_path: str, quiet: bool,
               progress=None) -> tuple:
    """Run ``cmd`` from the repo root, tee its output to ``log_path``, call
    ``progress(line)`` on each line; return (returncode, output, seconds).
    """
    t0 = time.perf_counter()
    rc = stream_to_log(cmd, log_path, echo=not quiet, on_line=progress)
    with open(log_path, errors='replace') as f:
        output = f.read()
    return rc, output, time.perf_counter() - t0


def _last_checkpoint(work_dir: str) -> str:
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise SystemExit(f'demo: training wrote no checkpoint ({marker} '
                         f'missing)')
    with open(marker) as f:
        return f.read().strip()


class Progress:
    """One line per training log line: this run's iteration and ETA, and
    the whole demo's ETA (the runs still to come are assumed to take as
    long as this one)."""

    def __init__(self, label: str, runs_left: int):
        self.label, self.runs_left = label, runs_left
        self.t0 = time.perf_counter()

    def __call__(self, line: str) -> None:
        got = parse_progress(line)
        if got is None:
            return
        it, total, eta = got
        elapsed = time.perf_counter() - self.t0
        demo_eta = eta + self.runs_left * (elapsed + eta)
        msg = (f'[demo] {self.label}: iteration {it}/{total}, this run '
               f'{_clock(eta)} left, demo {_clock(demo_eta)} left')
        print(msg, flush=True)


def train_and_test(config: str, work_dir: str, seed: int,
                   cfg_options: List[str], quiet: bool,
                   progress=None) -> dict:
    """``tools/train.py`` then ``tools/test.py`` on the last checkpoint;
    returns ``{config, mIoU, aAcc, mAcc, seconds, checkpoint}``."""
    os.makedirs(work_dir, exist_ok=True)
    opts = [f'randomness.seed={seed}'] + list(cfg_options)
    py = sys.executable
    t0 = time.perf_counter()
    train = [py, 'tools/train.py', config, '--work-dir', work_dir,
             '--cfg-options'] + opts
    print('[demo] ' + ' '.join(train), flush=True)
    rc, _, _ = run_logged(train, osp.join(work_dir, 'train.log'), quiet,
                          progress)
    if rc != 0:
        raise SystemExit(f'demo: training failed (exit {rc}); see '
                         f'{osp.join(work_dir, "train.log")}')
    ckpt = _last_checkpoint(work_dir)
    test = [py, 'tools/test.py', config, ckpt, '--work-dir',
            osp.join(work_dir, 'test'), '--cfg-options'] + opts
    print('[demo] ' + ' '.join(test), flush=True)
    rc, out, _ = run_logged(test, osp.join(work_dir, 'test.log'), quiet)
    if rc != 0:
        raise SystemExit(f'demo: testing failed (exit {rc}); see '
                         f'{osp.join(work_dir, "test.log")}')
    metrics = parse_metrics(out)
    if 'mIoU' not in metrics:
        raise SystemExit('demo: no mIoU in the test output; see '
                         f'{osp.join(work_dir, "test.log")}')
    return dict(config=config, mIoU=metrics['mIoU'],
                aAcc=metrics.get('aAcc'), mAcc=metrics.get('mAcc'),
                seconds=round(time.perf_counter() - t0, 1),
                checkpoint=ckpt)


def suite_result(comparison: str, path: str = SUITE_JSON) -> Optional[dict]:
    """The accuracy suite's record of ``comparison`` (None if absent)."""
    if not osp.isfile(path):
        return None
    with open(path) as f:
        suite = json.load(f)
    for rec in suite.get('comparisons', []):
        if rec.get('name') == comparison:
            return rec
    return None


def summary_lines(summary: dict) -> List[str]:
    """The side-by-side table and the caveat, as printed."""
    b, m = summary['baseline'], summary['method']
    width = max(len(b['name']), len(m['name']), len('difference'))
    lines = [
        f'[demo] {summary["title"]}',
        f'[demo] seed {summary["seed"]}, same data and iterations; mIoU on '
        f'the held-out split ({summary["evaluated_on"]})',
        f'  {"":{width}}  {"mIoU":>6}  {"seconds":>7}  config',
    ]
    for r in (b, m):
        lines.append(f'  {r["name"]:{width}}  {r["mIoU"]:6.2f}  '
                     f'{r["seconds"]:7.0f}  {r["config"]}')
    lines.append(f'  {"difference":{width}}  {summary["diff"]:+6.2f}')
    suite = summary.get('suite')
    text = ('[demo] One seed is an anecdote: on this data two seeds of the '
            'same config differ by up to a few mIoU.')
    if suite:
        ci = suite['ci95']
        text += (f' The accuracy suite ({suite["comparison"]}, '
                 f'{suite["seeds"]} seeds, paired) measured '
                 f'{suite["diff_mean"]:+.2f} mIoU, 95 % CI '
                 f'[{ci[0]:+.2f}, {ci[1]:+.2f}]: README "Results", '
                 f'docs/results/accuracy_suite.json.')
    lines.append(text)
    return lines


def write_summary(summary: dict, path: str) -> None:
    write_json(path, summary)


def suite_summary(comparison: str) -> Optional[dict]:
    rec = suite_result(comparison)
    if rec is None:
        return None

    def values(v):
        return json.loads(v) if isinstance(v, str) else v

    return dict(comparison=comparison, seeds=len(values(rec['seeds'])),
                diff_mean=round(float(rec['diff_mean']), 2),
                ci95=[round(float(x), 2) for x in values(rec['ci95'])])
