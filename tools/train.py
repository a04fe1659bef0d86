# Copyright (c) OpenMMLab. All rights reserved.
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

# First project import: applies the compatibility layer (mmcv-lite ops shim,
# safe checkpoint loading, pkg_resources) and registers every module, before
# the config (and its `mmseg::` bases) is parsed.
import mmseg_contrast  # noqa: F401
from mmseg_contrast.checkpoint.resume import find_resume_checkpoint


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # When using PyTorch version >= 2.0.0, the `torch.distributed.launch`
    # will pass the `--local-rank` parameter to `tools/train.py` instead
    # of `--local_rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)

    return args


def add_hook_once(cfg, name):
    """Append the plugin's hook ``name`` to ``cfg.custom_hooks`` unless the
    config lists it already (e.g. with its own arguments). Scope-qualified
    (``mmseg.<name>``), so that it also builds in configs of another default
    scope, e.g. DenseCL pre-training in the mmpretrain scope."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(str(h.get('type', '')) in (name, f'mmseg.{name}')
               for h in hooks):
        hooks.append(dict(type=f'mmseg.{name}'))
    cfg.custom_hooks = hooks


def use_safe_checkpoint_hook(cfg):
    """Replace mmengine's ``CheckpointHook`` by ``SafeCheckpointHook`` (same
    arguments): a crash while a checkpoint is written never loses the run.
    A config that names another checkpoint hook type keeps it."""
    hook = (cfg.get('default_hooks', None) or {}).get('checkpoint', None)
    if hook is not None and str(hook.get('type', '')) in (
            'CheckpointHook', 'mmengine.CheckpointHook'):
        hook['type'] = 'mmseg.SafeCheckpointHook'


def main():
    args = parse_args()

    # load config
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        # update configs according to CLI args if args.work_dir is not None
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        # use config filename as default work_dir if cfg.work_dir is None
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    # enable automatic-mixed-precision training
    if args.amp is True:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    # resume training: from last_checkpoint when it names a loadable file,
    # else from the newest loadable checkpoint of the work dir (warning)
    cfg.resume = args.resume
    if args.resume:
        resume_from = find_resume_checkpoint(cfg.work_dir)
        if resume_from is not None:
            cfg.load_from = resume_from
    use_safe_checkpoint_hook(cfg)
    # re-seed every iteration from (seed, iteration) so that --resume is
    # bit-exact (mmengine does not checkpoint the random generators)
    add_hook_once(cfg, 'IterationSeedHook')

    # stop at the first label value >= num_classes, naming the file
    add_hook_once(cfg, 'LabelRangeCheckHook')

    # build the runner from config
    if 'runner_type' not in cfg:
        # build the default runner
        runner = Runner.from_cfg(cfg)
    else:
        # build customized runner from the registry
        # if 'runner_type' is set in the cfg
        runner = RUNNERS.build(cfg)

    # start training
    runner.train()


if __name__ == '__main__':
    main()
