"""Run a snippet of Python in a fresh interpreter (a clean import state)."""
import os
import subprocess
import sys
import textwrap


def run_py(code, env=None, timeout=300):
    """``python -c <dedented code>`` with ``env`` added to the environment;
    returns the ``CompletedProcess`` (text stdout / stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, env=full_env,
                          timeout=timeout)
