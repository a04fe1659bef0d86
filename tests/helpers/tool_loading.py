"""Import a script under ``tools/`` as a module (``tools/`` is not a package).

The one loader every test uses to call a tool's ``main()`` in-process. pytest
puts ``tests/`` on ``sys.path`` (it holds the root ``conftest.py``), so any
test can ``from helpers.tool_loading import load_tool``.
"""
import importlib.util
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(rel_path):
    """A fresh module of ``tools/<rel_path>``, e.g. ``'analysis/x.py'``.

    Each call executes the file again (no ``sys.modules`` entry), so a test
    may patch the module without affecting another.
    """
    path = osp.join(REPO, 'tools', rel_path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'no tool tools/{rel_path}')
    name = 'tool_' + osp.splitext(rel_path)[0].replace('/', '_')
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
