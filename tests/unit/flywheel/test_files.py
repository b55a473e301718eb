"""Files written whole, secrets private from their first byte, locks that take turns."""

import json
import os
import stat

import pytest

from flywheel.files import file_lock, generated_once, staged_directory, write_json_atomic


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_is_private_before_any_byte_is_written(tmp_path, monkeypatch):
    """A crash between writing and a later chmod would leave keys readable: there is no later."""
    seen = {}
    replace = os.replace

    def spy(src, dst):
        seen[str(dst)] = _mode(type(tmp_path)(src))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    usual = os.umask(0o022)  # files are created 0644 by default
    try:
        path = tmp_path / "serving" / "keys.json"
        keys = generated_once(path, lambda: {"api": "k1"})
    finally:
        os.umask(usual)
    assert seen[str(path)] == 0o600 and _mode(path) == 0o600
    assert generated_once(path, lambda: {"api": "other"}) == keys  # made once, then read


def test_a_secret_crashed_mid_write_leaves_nothing_readable(tmp_path, monkeypatch):
    path = tmp_path / "keys.json"

    def crash(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(json, "dumps", crash)
    with pytest.raises(OSError):
        write_json_atomic({"api": "k1"}, path, private=True)
    assert list(tmp_path.iterdir()) == []


def test_a_secret_file_left_readable_by_an_older_release_is_made_private(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"api": "k1"}))
    path.chmod(0o644)
    assert generated_once(path, lambda: {"api": "new"}) == {"api": "k1"}
    assert _mode(path) == 0o600


def test_two_builds_of_one_version_at_once_both_succeed(tmp_path):
    """Content-addressed: the second to finish finds the first's copy and keeps it."""
    final = tmp_path / "datasets" / "d-1"
    with staged_directory(final) as first, staged_directory(final) as second:
        (first / "train.parquet").write_text("first")
        (second / "train.parquet").write_text("second")
    assert (final / "train.parquet").read_text() == "second"  # the inner block finished first
    assert sorted(p.name for p in final.parent.iterdir()) == ["d-1"]


def test_a_lock_is_held_until_released_and_can_be_tried(tmp_path):
    path = tmp_path / "locks" / "push-spam.lock"
    with file_lock(path) as held:
        assert held
        with file_lock(path, wait=False) as again:  # another open file: another holder
            assert not again
    with file_lock(path, wait=False) as free:
        assert free
