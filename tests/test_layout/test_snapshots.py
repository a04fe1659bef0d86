"""Behaviour unchanged by the package / config layout: every registered name
and every config's resolved dict equal the snapshot taken before the move
(``tests/helpers/layout_snapshot.py`` says how a deliberate change updates it).
"""
import pytest

from helpers import layout_snapshot as snap


def test_registered_names_match_snapshot():
    assert snap.registered_names() == snap.load_snapshot('registered_names')


def test_config_set_matches_snapshot():
    expected = sorted(snap.load_snapshot('resolved_configs'))
    assert snap.config_files() == expected


@pytest.mark.parametrize('rel', sorted(snap.load_snapshot('resolved_configs')))
def test_resolved_config_matches_snapshot(rel):
    expected = snap.load_snapshot('resolved_configs')[rel]
    got = snap.resolved_config(rel)
    if got != expected:
        diff = sorted(k for k in set(got) | set(expected)
                      if got.get(k) != expected.get(k))
        pytest.fail(f'{rel}: resolved config differs from the snapshot at '
                    f'top-level keys {diff}')
