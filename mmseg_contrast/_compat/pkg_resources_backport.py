"""``pkg_resources`` backport (patch ``pkg_resources_backport`` of
:func:`mmseg_contrast._compat.apply`).

mmengine 0.10.7 needs ``pkg_resources`` (removed in setuptools 82) to resolve
``mmseg::`` configs. The project pins ``setuptools<81``; if it is missing
anyway, mmengine's ``is_installed`` / ``get_installed_path`` /
``package2module`` are replaced by ``importlib.metadata`` versions.
"""
import importlib.metadata as md
import importlib.util
import os

import mmengine.config.config as cfg_mod
import mmengine.utils as mu
import mmengine.utils.package_utils as pu

__all__ = ['install_pkg_resources_backport']


def _importlib_is_installed(package):
    try:
        md.distribution(package)
        return True
    except md.PackageNotFoundError:
        return importlib.util.find_spec(package) is not None


def _importlib_package2module(package):
    dist = md.distribution(package)
    top = dist.read_text('top_level.txt')
    if top:
        return top.split('\n')[0]
    raise ValueError(f'can not infer the module name of {package}')


def _importlib_get_installed_path(package):
    try:
        module = _importlib_package2module(package)
    except (md.PackageNotFoundError, ValueError):
        module = package
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f'{package} is not installed')
    return os.path.dirname(spec.origin)


def install_pkg_resources_backport():
    if importlib.util.find_spec('pkg_resources') is not None:
        return False
    for mod in (pu, mu, cfg_mod):
        if hasattr(mod, 'is_installed'):
            mod.is_installed = _importlib_is_installed
        if hasattr(mod, 'get_installed_path'):
            mod.get_installed_path = _importlib_get_installed_path
        if hasattr(mod, 'package2module'):
            mod.package2module = _importlib_package2module
    return True
