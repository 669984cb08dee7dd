"""Fixtures of the vault core's tests."""

import pytest


@pytest.fixture(autouse=True)
def checkpoint_sink(settings, tmp_path):
    """Each test exports audit checkpoints to a file of its own, never to the developer's var/."""
    path = tmp_path / "exported-checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_SINK = str(path)
    return path
