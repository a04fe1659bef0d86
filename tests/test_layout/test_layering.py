"""The package is layered: no import cycle (every import statement, at any
depth), the runtime never imports tooling or the deprecated aliases,
``checkpoint/`` imports neither ``_compat`` nor tooling, and ``import
mmseg_contrast`` loads no data-preparation, demo or analysis module."""
import json
import subprocess
import sys
import textwrap

import pytest

from helpers.import_graph import cycles, import_graph, imports_of, module_files

PKG = 'mmseg_contrast'
TOOLING = f'{PKG}.tooling'
#: old module path -> the module it is now (kept one release, warns)
DEPRECATED = {
    f'{PKG}.checkpoint_integrity': f'{PKG}.checkpoint.integrity',
    f'{PKG}.checkpoint_safety': f'{PKG}.checkpoint.safety',
    f'{PKG}._compat_dist': f'{PKG}._compat.cpu_dist',
    f'{PKG}.utils.download': f'{PKG}.checkpoint.download',
    f'{PKG}.utils.openseg_convert': f'{PKG}.converters.openseg',
    f'{PKG}.utils.densecl_convert': f'{PKG}.converters.densecl',
    f'{PKG}.utils.mobilenetv2': f'{PKG}.converters.mobilenetv2',
    f'{PKG}.utils.embedding_analysis': f'{PKG}.tooling.embedding_analysis',
    f'{PKG}.utils.paired_stats': f'{PKG}.tooling.paired_stats',
    f'{PKG}.utils.publish': f'{PKG}.tooling.publish',
    f'{PKG}.utils.model_zoo': f'{PKG}.tooling.model_zoo',
    f'{PKG}.models.selfsup.densecl': f'{PKG}.selfsup.densecl',
    f'{PKG}.models.selfsup.seg_backbones': f'{PKG}.selfsup.seg_backbones',
    f'{PKG}.datasets.densecl_wrapper': f'{PKG}.selfsup.seg_images_dataset',
    f'{PKG}.engine.hooks.densecl_check_hook':
    f'{PKG}.selfsup.densecl_check_hook',
}
#: deprecated modules that re-export (instead of aliasing) a moved module
REEXPORTS = {f'{PKG}.utils', f'{PKG}.utils.offline_data',
             f'{PKG}.utils.openseg_cache', f'{PKG}.models.selfsup'}
SHIMS = set(DEPRECATED) | REEXPORTS


def _in(mod, pkg):
    return mod == pkg or mod.startswith(pkg + '.')


@pytest.fixture(scope='module')
def graph():
    return import_graph()


def test_every_deprecated_module_is_known(graph):
    """A new file under ``utils/`` etc. must be listed here (or moved)."""
    old_places = [m for m in graph if _in(m, f'{PKG}.utils')
                  or _in(m, f'{PKG}.models.selfsup')]
    assert set(old_places) <= SHIMS


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def test_no_cycle_detector_is_not_blind():
    g = {'a': {'b': []}, 'b': {'c': []}, 'c': {'a': []}, 'd': {'a': []}}
    assert cycles(g) == [['a', 'b', 'c']]


def test_package_imports_its_own_modules_at_module_level(graph):
    """No import of a package module sits inside a function (the only
    reason they did was to dodge the cycle this layout removed)."""
    inside = [f'{m} -> {t} (line {line})' for m, edges in graph.items()
              for t, uses in edges.items() for line, in_fn in uses
              if in_fn and m not in SHIMS]
    assert inside == []


def test_runtime_never_imports_tooling_or_shims(graph):
    bad = [f'{m} -> {t}' for m, edges in graph.items() for t in edges
           if not _in(m, TOOLING) and m not in SHIMS
           and m != f'{PKG}._deprecated'
           and (_in(t, TOOLING) or t in SHIMS)]
    assert bad == []


def test_tooling_never_imports_shims(graph):
    bad = [f'{m} -> {t}' for m, edges in graph.items() for t in edges
           if _in(m, TOOLING) and t in SHIMS]
    assert bad == []


@pytest.mark.parametrize('layer, forbidden', [
    ('checkpoint', ('_compat', 'tooling', 'models', 'datasets', 'engine',
                    'selfsup')),
    ('converters', ('_compat', 'tooling', 'models', 'datasets', 'engine',
                    'selfsup')),
    ('_compat', ('tooling', 'models', 'datasets', 'engine', 'selfsup')),
])
def test_lower_layers_import_nothing_above(graph, layer, forbidden):
    bad = [f'{m} -> {t}' for m, edges in graph.items() for t in edges
           if _in(m, f'{PKG}.{layer}')
           and any(_in(t, f'{PKG}.{f}') for f in forbidden)]
    assert bad == []


def test_naming_is_a_stdlib_leaf():
    files = module_files()
    mod = f'{PKG}.checkpoint.naming'
    assert imports_of(mod, files[mod], files) == []
    with open(files[mod]) as f:
        src = f.read()
    assert 'import torch' not in src and 'mmengine' not in src


def test_no_module_of_the_runtime_imports_fcntl(graph):
    """POSIX-only modules belong to tooling (the package must import on
    Windows)."""
    import ast
    files = module_files()
    bad = []
    for mod, path in files.items():
        if _in(mod, TOOLING) or mod in SHIMS:
            continue
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(
                    a.name in ('fcntl', 'termios', 'pwd', 'grp')
                    for a in node.names):
                bad.append(mod)
    assert bad == []


def _run(code):
    res = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_import_loads_no_tooling_and_warns_nothing_of_ours():
    out = _run('''
        import json, sys, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            import mmseg_contrast
        ours = [str(w.message) for w in caught
                if 'mmseg_contrast' in str(w.message)]
        mods = sorted(m for m in sys.modules if m.startswith('mmseg_contrast'))
        print(json.dumps(dict(mods=mods, warnings=ours)))
    ''')
    got = json.loads(out.strip().splitlines()[-1])
    assert got['warnings'] == []
    assert [m for m in got['mods'] if _in(m, TOOLING) or m in SHIMS] == []
    assert f'{PKG}.selfsup' in got['mods']  # mmpretrain-scope registration


def test_deprecated_paths_alias_the_new_modules_and_warn():
    out = _run(f'''
        import importlib, json, sys, warnings
        import mmseg_contrast
        result = {{}}
        for old, new in {DEPRECATED!r}.items():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                mod = importlib.import_module(old)
            result[old] = dict(
                same=mod is importlib.import_module(new),
                warned=any(issubclass(w.category, DeprecationWarning)
                           and new in str(w.message) for w in caught))
        from mmseg_contrast import _compat
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            from mmseg_contrast._compat import load_checkpoint_file
        from mmseg_contrast.checkpoint import load_checkpoint_file as new
        result['_compat.load_checkpoint_file'] = dict(
            same=load_checkpoint_file is new,
            warned=any(issubclass(w.category, DeprecationWarning)
                       for w in caught))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            from mmseg_contrast.utils import download_checkpoint
            from mmseg_contrast.utils.openseg_cache import save_checkpoint
            from mmseg_contrast.models.selfsup import CheckedDenseCL
        from mmseg_contrast.checkpoint import (atomic_torch_save,
                                               download_checkpoint as dc)
        from mmseg_contrast.selfsup import CheckedDenseCL as new_densecl
        result['utils'] = dict(
            same=download_checkpoint is dc and save_checkpoint is
            atomic_torch_save and CheckedDenseCL is new_densecl,
            warned=any(issubclass(w.category, DeprecationWarning)
                       for w in caught))
        print(json.dumps(result))
    ''')
    got = json.loads(out.strip().splitlines()[-1])
    assert {k: v for k, v in got.items()
            if v != dict(same=True, warned=True)} == {}
