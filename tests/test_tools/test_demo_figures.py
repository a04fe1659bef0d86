import os.path as osp
import shutil

from helpers.tool_helpers import CONFIG
from helpers.tool_loading import load_tool

demo = load_tool('analysis/demo_figures.py')


def _work_dir(root, ckpt, log_src, aal_root):
    """A work dir as tools/train.py leaves it (config dump, checkpoint,
    last_checkpoint written on another machine, vis_data log)."""
    from mmengine.config import Config
    root.mkdir()
    cfg = Config.fromfile(CONFIG)
    cfg.val_dataloader.dataset.data_root = aal_root
    cfg.dump(str(root / 'deeplabv3_mnv2_aal_cpu.py'))
    shutil.copy(ckpt, root / 'iter_20.pth')
    (root / 'last_checkpoint').write_text('/some/other/root/iter_20.pth')
    vis = root / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text(log_src)


def test_demo_figures(tmp_path, ce_ckpt, contrast_ckpt, aal_root):
    log = '\n'.join(
        f'{{"loss": {1 / i}, "decode.loss_ce": {1 / i}, "step": {i}}}'
        for i in range(1, 6)) + '\n{"mIoU": 12.5, "step": 5}\n'
    _work_dir(tmp_path / 'ce', ce_ckpt, log, aal_root)
    _work_dir(tmp_path / 'con', contrast_ckpt,
              log.replace('"loss": ', '"decode.loss_contrast": 0.1, '
                          '"loss": '), aal_root)
    out = tmp_path / 'figs'
    demo.main([str(tmp_path / 'ce'), str(tmp_path / 'con'), '--out-dir',
               str(out), '--max-images', '2'])
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        'curves.png', 'dendrogram_ce.png', 'dendrogram_contrast.png',
        'relation_ce.csv', 'relation_ce.png', 'relation_contrast.csv',
        'relation_contrast.png', 'tsne_ce_vs_contrast.png'
    ]
    assert all(osp.getsize(out / n) > 500 for n in names)
    # the checkpoint named in last_checkpoint is found next to it
    from mmseg_contrast.tooling.figures.demo import run_files
    assert run_files(str(tmp_path / 'ce')) == (
        str(tmp_path / 'ce' / 'deeplabv3_mnv2_aal_cpu.py'),
        str(tmp_path / 'ce' / 'iter_20.pth'))
