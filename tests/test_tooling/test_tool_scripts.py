"""``tools/analysis`` and ``tools/dataset_converters`` are thin command
lines over :mod:`mmseg_contrast.tooling`: no ``sys.path`` edits, no script
importing another, and the library imports nothing from ``tools/``."""
import ast
import glob
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPTS = sorted(
    p for d in ('analysis', 'dataset_converters')
    for p in glob.glob(osp.join(REPO, 'tools', d, '*.py')))
STEMS = {osp.splitext(osp.basename(p))[0] for p in SCRIPTS}
TOOLING = sorted(
    glob.glob(osp.join(REPO, 'mmseg_contrast', 'tooling', '**', '*.py'),
              recursive=True))


def _top_level_imports(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split('.')[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split('.')[0]


@pytest.mark.parametrize('path', SCRIPTS,
                         ids=lambda p: osp.relpath(p, REPO))
def test_script_is_a_command_line(path):
    with open(path) as f:
        src = f.read()
    assert 'sys.path' not in src
    assert not set(_top_level_imports(path)) & STEMS, 'imports a script'
    assert "if __name__ == '__main__':" in src


@pytest.mark.parametrize('path', TOOLING,
                         ids=lambda p: osp.relpath(p, REPO))
def test_tooling_module_stands_alone(path):
    with open(path) as f:
        src = f.read()
    assert 'sys.path' not in src
    assert not set(_top_level_imports(path)) & (STEMS | {'tools'})
    assert src.count('\n') <= 400
