"""Run the accuracy suite's comparisons (``make bench-accuracy``): each one
through :func:`~mmseg_contrast.tooling.compare.run_comparison` in one work
root, so arms shared by two comparisons are trained once, and the suite JSON
rewritten after each."""
import os.path as osp

from ..compare import ArmSpec, read_json, run_comparison
from .log import say
from .pretrain import densecl_arm, densecl_pretrain, densecl_pretrain_dir
from .protocol import ARMS, COMPARISONS, DENSECL_MMSEG
from .summary import suite_entry, write_suite

__all__ = ['run_suite']


def run_suite(names, seeds, work_dir, out, png, max_iters=None,
              densecl_max_iters=None, launcher='none', nproc=1, log=say):
    """Run the comparisons ``names`` (keys of ``COMPARISONS``, in that
    order) over ``seeds`` in ``work_dir``; finished runs are reused.

    The suite JSON ``out`` (and its figure ``png``) is rewritten after each
    comparison; comparisons not run keep their previous entry there.
    ``max_iters`` overrides every arm's schedule, ``densecl_max_iters`` the
    DenseCL pre-training length. Raises
    :class:`~mmseg_contrast.tooling.compare.CompareError` on a failed run.

    Returns:
        dict: ``{comparison name: suite entry}`` of every entry in ``out``.
    """
    work_root = osp.abspath(work_dir)
    suite = read_json(out) or {}
    entries = {c['name']: c for c in suite.get('comparisons', [])}
    for i, name in enumerate(names, 1):
        base, meth, dataset = COMPARISONS[name]
        log(f'comparison {i}/{len(names)}: {name} ({meth} vs {base})')
        opts = None
        if name == 'densecl_vs_random':
            for sd in seeds:
                densecl_pretrain(work_root, sd, densecl_max_iters, log)
            pre = densecl_pretrain_dir(work_root, '{seed}',
                                       densecl_max_iters)
            opts = [f'model.backbone.init_cfg.checkpoint='
                    f'{pre}/{DENSECL_MMSEG}']
            meth = densecl_arm(densecl_max_iters)
        report = run_comparison(
            ArmSpec(base, ARMS[base]),
            [ArmSpec(meth, ARMS.get(meth, ARMS['densecl100']), opts)],
            seeds, work_root, max_iters=max_iters,
            launcher=launcher, nproc=nproc, dataset=dataset,
            out_json=osp.join(work_root, f'{name}.json'),
            out_png=osp.join(work_root, f'{name}.png'), log=log)
        entries[name] = suite_entry(name, report, dataset)
        write_suite(entries, suite, seeds, work_dir, out, png)
    return entries
