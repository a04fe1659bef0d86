"""``mmseg_contrast::`` configs (patch ``config_scope`` of
:func:`mmseg_contrast._compat.apply`).

mmengine resolves ``package::path`` only for the packages in its own table
(``mmengine.config.utils.MODULE2PACKAGE``); for any other name it fails with
``AssertionError: mmengine does not support to load mmseg_contrast
config``. This patch adds the plugin to that table, so a user config can
inherit ``_base_ = ['mmseg_contrast::pixel_contrast/<config>.py']`` wherever
``mmseg::`` works, and makes the package's folder the one mmengine looks in
(``<package>/.mim/configs``): mmengine derives it from the distribution's
location, which is wrong for an editable install (``pip install -e .``).

mmengine also gives the dicts of a ``package::`` base the ``_scope_`` of the
package name; there is no ``mmseg_contrast`` registry scope: the plugin's
configs are mmseg configs (and mmpretrain ones for DenseCL pre-training)
that carry their own ``default_scope`` and the ``_scope_`` of their
``mmseg::`` bases, so their dicts are left unscoped, exactly as when the
file is loaded by path.
"""
import os.path as osp

import mmengine.config.config as cfg_mod
import mmengine.hub.hub as hub_mod
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE

__all__ = ['PACKAGE', 'install_config_scope']

PACKAGE = 'mmseg_contrast'
#: the package folder (holding ``.mim/configs``)
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _wrap(get_installed_path):
    if getattr(get_installed_path, '__mmseg_contrast__', False):
        return get_installed_path

    def installed_path(package):
        if package == PACKAGE:
            return PACKAGE_DIR
        return get_installed_path(package)

    installed_path.__mmseg_contrast__ = True
    installed_path.__doc__ = get_installed_path.__doc__
    return installed_path


def _unscoped(get_cfg_path):
    if getattr(get_cfg_path, '__mmseg_contrast__', False):
        return get_cfg_path

    def cfg_path_and_scope(cfg_path, filename):
        path, scope = get_cfg_path(cfg_path, filename)
        return path, (None if scope == PACKAGE else scope)

    cfg_path_and_scope.__mmseg_contrast__ = True
    return cfg_path_and_scope


def install_config_scope() -> bool:
    """Register ``mmseg_contrast::`` with mmengine's config loader
    (idempotent: the table entry and the marked wrappers are the guards)."""
    MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
    for mod in (cfg_mod, hub_mod):
        mod.get_installed_path = _wrap(mod.get_installed_path)
    Config._get_cfg_path = staticmethod(_unscoped(Config._get_cfg_path))
    return True
