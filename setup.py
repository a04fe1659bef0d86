"""Install mmseg_contrast (``pip install -e .``).

Like OpenMMLab packages, ``tools/``, ``configs/`` and ``model-index.yml`` ship
inside the package under ``mmseg_contrast/.mim`` (symlinked for editable
installs, copied for wheels/sdists), so ``mim`` and ``mmseg_contrast::``
config references find them.
"""
import os
import os.path as osp
import platform
import shutil
import sys
import warnings

from setuptools import find_packages, setup

MIM_FILES = ['tools', 'configs', 'model-index.yml']


def readme():
    with open('README.md', encoding='utf-8') as f:
        return f.read()


def get_version():
    ns = {}
    with open(osp.join('mmseg_contrast', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), ns)
    return ns['__version__']


def parse_requirements(fname):
    reqs = []
    with open(fname) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def add_mim_extension():
    """Put tools/configs/model-index.yml into ``mmseg_contrast/.mim``."""
    if any(cmd in sys.argv for cmd in ('develop', 'editable_wheel')):
        mode = 'copy' if platform.system() == 'Windows' else 'symlink'
    elif any(cmd in sys.argv
             for cmd in ('sdist', 'bdist_wheel', 'build', 'install')):
        mode = 'copy'
    else:
        return
    repo_path = osp.dirname(osp.abspath(__file__))
    mim_path = osp.join(repo_path, 'mmseg_contrast', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for filename in MIM_FILES:
        src_path = osp.join(repo_path, filename)
        if not osp.exists(src_path):
            continue
        tar_path = osp.join(mim_path, filename)
        if osp.isfile(tar_path) or osp.islink(tar_path):
            os.remove(tar_path)
        elif osp.isdir(tar_path):
            shutil.rmtree(tar_path)
        if mode == 'symlink':
            try:
                os.symlink(osp.relpath(src_path, mim_path), tar_path)
                continue
            except OSError:
                warnings.warn(f'Failed to symlink {filename}; copying it')
        if osp.isfile(src_path):
            shutil.copyfile(src_path, tar_path)
        else:
            shutil.copytree(src_path, tar_path)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmseg_contrast',
        version=get_version(),
        description='Pixel-level contrastive learning (ContrastiveSeg, ReCo, '
        'DenseCL) for MMSegmentation 1.x',
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='semantic segmentation, contrastive learning, mmsegmentation',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'demo')),
        include_package_data=True,
        package_data={'mmseg_contrast': ['.mim/**/*', '.mim/*']},
        python_requires='>=3.8',
        license='Apache License 2.0',
        install_requires=parse_requirements('requirements/runtime.txt'),
        extras_require={
            'mim': parse_requirements('requirements/mminstall.txt'),
            'tests': parse_requirements('requirements/tests.txt'),
        },
        zip_safe=False)
