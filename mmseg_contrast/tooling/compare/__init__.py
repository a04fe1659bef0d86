"""Compare training recipes over several seeds (``tools/analysis/
compare_runs.py`` and the accuracy suite).

* :mod:`.arms` - :class:`ArmSpec`, :class:`CompareError`, cfg-option lists
  and config loading;
* :mod:`.schedule` - :func:`schedule_overrides` (``--max-iters``);
* :mod:`.records` - run signatures, run JSON files and the reuse / resume
  decision (:func:`plan_run`);
* :mod:`.launch` - the train / test subprocesses (:func:`run_logged`);
* :mod:`.runner` - :func:`run_comparison`, the engine;
* :mod:`.report` / :mod:`.report_figure` - the report JSON, its printed
  summary and its figure.
"""
from .arms import (
    ArmSpec,
    CompareError,
    OptionsT,
    load_config,
    option_list,
    parse_options,
)
from .launch import REPO, git_version, launch_prefix, run_logged
from .records import (
    display_path,
    file_sha256,
    list_test_jsons,
    make_signature,
    plan_run,
    read_json,
    read_test_metrics,
    write_json,
)
from .report import build_report, metric_value, print_summary, save_report
from .report_figure import plot_report
from .runner import run_comparison
from .schedule import schedule_overrides

__all__ = [
    'ArmSpec', 'CompareError', 'OptionsT', 'load_config', 'option_list',
    'parse_options', 'REPO', 'git_version', 'launch_prefix', 'run_logged',
    'display_path', 'file_sha256', 'list_test_jsons', 'make_signature',
    'plan_run', 'read_json', 'read_test_metrics', 'write_json',
    'build_report', 'metric_value', 'print_summary', 'save_report',
    'plot_report', 'run_comparison', 'schedule_overrides'
]
