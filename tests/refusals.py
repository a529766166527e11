"""Running the command line in-process on bad input: the `cli` fixture (tests/conftest.py) and what a refusal
must look like (one line on stderr, exit code 2, nothing on disk created or changed)."""

import sys
from pathlib import Path

import pytest

import painters.models.loading
from painters.cli import main


class Loaded(Exception):
    """Raised in place of loading a model: reaching it means every check before loading passed."""


def cli_fixture(tmp_path, monkeypatch, capsys, painters_cache):
    """Run `painters ARGS` in-process in an empty folder holding the fixtures below; loading a model fails the test
    (a tokenizer loads: a converted embedded model goes to the session's cache, never the user's)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAINTERS_CACHE", str(painters_cache))
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "afile").write_text("hi\n")
    (tmp_path / "garbage.gguf").write_bytes(bytes(range(256)) * 20)
    (tmp_path / "empty.db").write_bytes(b"")

    def loaded(*args, **kwargs):
        raise Loaded

    monkeypatch.setattr(painters.models.loading, "load_model", loaded)

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["painters", *args])
        with pytest.raises(SystemExit) as exit:
            main()
        out, err = capsys.readouterr()
        return exit.value.code, out, err

    return run


def on_disk(folder: Path) -> dict:
    return {path: (path.lstat().st_size, path.lstat().st_mtime_ns) for path in sorted(folder.rglob("*"))}


def assert_refused(cli, tmp_path, args, message):
    """Exit 2 with one line on stderr that starts with `message`; nothing on disk created or changed."""
    before = on_disk(tmp_path)
    code, _, err = cli(*args)
    assert (code, err.count("\n")) == (2, 1), err
    assert err.startswith(message), err
    assert "Traceback" not in err
    assert on_disk(tmp_path) == before
