"""The file backend: whole checkpoints only, and clear errors (the ConfigMap one is e2e)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from exporter.persist.backends import FileBackend, StateError


def test_a_missing_file_is_no_checkpoint_and_a_write_replaces_it_whole(tmp_path: Path) -> None:
    backend = FileBackend(str(tmp_path / "state"))
    assert asyncio.run(backend.read()) is None
    asyncio.run(backend.write(b"one"))
    asyncio.run(backend.write(b"two"))
    assert asyncio.run(backend.read()) == b"two"
    assert os.listdir(tmp_path) == ["state"]  # no temporary file left behind


def test_an_unwritable_place_is_a_state_error_saying_where(tmp_path: Path) -> None:
    backend = FileBackend(str(tmp_path / "missing-dir" / "state"))
    with pytest.raises(StateError, match="missing-dir"):
        asyncio.run(backend.write(b"x"))


def test_an_unreadable_file_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()  # a directory where the file should be
    with pytest.raises(StateError, match="cannot read"):
        asyncio.run(FileBackend(str(tmp_path / "state")).read())
