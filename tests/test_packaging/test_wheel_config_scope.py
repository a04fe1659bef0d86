"""A wheel of the project, installed outside the repo, lets a user config
inherit the plugin's configs through ``mmseg_contrast::`` (like ``mmseg::``).
"""
import os
import subprocess
import sys
import textwrap

from mmseg_contrast.tooling.gpu_check_wheels import build_project_wheel

from helpers.reliab_helpers import REPO

USER_CONFIGS = {
    'contrast.py': 'pixel_contrast/deeplabv3_mnv2_contrast_aal_cpu.py',
    'reco_semi.py': 'reco/reco-classmix_deeplabv3plus_r101_1xb10+10-40k_'
    'voc12aug-60labels-321x321.py',
    'densecl.py': 'densecl/densecl_mnv2_1xb16-coslr-1k_aal-128x128.py',
}
CHECK = textwrap.dedent('''
    import sys
    # the editable install of the repo must not shadow the wheel
    sys.meta_path[:] = [f for f in sys.meta_path
                        if '__editable__' not in getattr(f, '__module__', '')]
    import mmseg_contrast
    from mmengine.config import Config
    print('PACKAGE', mmseg_contrast.__file__)
    for name in sys.argv[1:]:
        cfg = Config.fromfile(name)
        print('MODEL', name, cfg.model.type, cfg.get('default_scope'))
''')


def test_installed_wheel_resolves_the_config_scope(tmp_path):
    dist = tmp_path / 'dist'
    dist.mkdir()
    # built from a clean copy of the work tree (building writes .mim/)
    wheel = build_project_wheel(REPO, str(dist))
    pip = [sys.executable, '-m', 'pip', '-q', '--disable-pip-version-check']
    site = tmp_path / 'site'
    subprocess.run(pip + ['install', '--no-deps', '--target', str(site),
                          str(wheel)], check=True, capture_output=True,
                   timeout=600)
    user = tmp_path / 'user'
    user.mkdir()
    for name, base in USER_CONFIGS.items():
        (user / name).write_text(f"_base_ = ['mmseg_contrast::{base}']\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    res = subprocess.run(
        [sys.executable, '-c', CHECK,
         *[str(user / n) for n in USER_CONFIGS]],
        cwd=str(user), env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f'PACKAGE {site}' in res.stdout
    got = {line.split()[1].rsplit('/', 1)[-1]: line.split()[2:]
           for line in res.stdout.splitlines() if line.startswith('MODEL')}
    assert got == {'contrast.py': ['EncoderDecoder', 'mmseg'],
                   'reco_semi.py': ['SemiSegmentor', 'mmseg'],
                   'densecl.py': ['CheckedDenseCL', 'mmpretrain']}
