"""The results store: one SQLite file (WAL) holding every finished cell of every sweep, and the labels of its plans.

A cell is one plan scored on one task at one limit, keyed by what determines its numbers: the model's
fingerprint, the plan text, the task, the limit, the data's fingerprint and the painters version. A cell
is inserted whole, in one transaction, only once it is complete, and a rerun skips what is stored. Runs record what computed the cells (library
versions, dtype, device, command), so a report can say what produced it. Labels (variant, n, seed, loops)
say which grid points produced a plan; two variants that build the same plan share its cells. Speeds hold
each plan's measured speed-up over the full model, once per plan. Models hold what a report needs to know of
the model's architecture (which layers attend to the whole context, the output layer's share of the work).
Calibration holds each plan's score on each batch of a plan search's calibration text, and searches each
search method's chosen plan per budget (`painters.plan_search`).

A cell is computed in pieces (a sweep's units of work: batches of a task's pairs, documents to generate
from), and each finished unit's pieces are stored at once, so an interrupted sweep loses only the units
in flight. The piece that completes a cell is stored with the cell, its per-document records (`samples`,
what `painters results --samples` exports) and the removal of its pieces, in one transaction.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from painters import __version__
from painters.core.errors import PaintersError

FORMAT = "painters-results"
SCHEMA = 4
MIGRATES = ("1", "2", "3")  # older schemas a writer upgrades in place (2 added pieces and samples, 3 models, 4 search)

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    model TEXT NOT NULL, model_fingerprint TEXT NOT NULL, plan TEXT NOT NULL, task TEXT NOT NULL,
    "limit" INTEGER NOT NULL, data_fingerprint TEXT NOT NULL, version TEXT NOT NULL,
    metrics TEXT NOT NULL, items INTEGER NOT NULL, seconds REAL NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (model_fingerprint, plan, task, "limit", data_fingerprint, version)
);
CREATE TABLE IF NOT EXISTS labels (
    model_fingerprint TEXT NOT NULL, plan TEXT NOT NULL, variant TEXT NOT NULL, n INTEGER NOT NULL,
    seed INTEGER NOT NULL, loops INTEGER NOT NULL, layer INTEGER NOT NULL,
    PRIMARY KEY (model_fingerprint, variant, n, seed, loops, layer)
);
CREATE TABLE IF NOT EXISTS runs (
    model_fingerprint TEXT NOT NULL, task TEXT NOT NULL, "limit" INTEGER NOT NULL, data_fingerprint TEXT NOT NULL,
    version TEXT NOT NULL, environment TEXT NOT NULL,
    PRIMARY KEY (model_fingerprint, task, "limit", data_fingerprint, version, environment)
);
CREATE TABLE IF NOT EXISTS speeds (
    model_fingerprint TEXT NOT NULL, plan TEXT NOT NULL, speedup REAL NOT NULL, shape TEXT NOT NULL,
    device TEXT NOT NULL, PRIMARY KEY (model_fingerprint, plan)
);
CREATE TABLE IF NOT EXISTS pieces (
    model_fingerprint TEXT NOT NULL, plan TEXT NOT NULL, task TEXT NOT NULL, "limit" INTEGER NOT NULL,
    data_fingerprint TEXT NOT NULL, version TEXT NOT NULL, part TEXT NOT NULL, idx INTEGER NOT NULL,
    payload TEXT NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY (model_fingerprint, plan, task, "limit", data_fingerprint, version, part, idx)
);
CREATE TABLE IF NOT EXISTS samples (
    model_fingerprint TEXT NOT NULL, plan TEXT NOT NULL, task TEXT NOT NULL, "limit" INTEGER NOT NULL,
    data_fingerprint TEXT NOT NULL, version TEXT NOT NULL, records TEXT NOT NULL,
    PRIMARY KEY (model_fingerprint, plan, task, "limit", data_fingerprint, version)
);
CREATE TABLE IF NOT EXISTS models (model_fingerprint TEXT PRIMARY KEY, facts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calibration (
    model_fingerprint TEXT NOT NULL, source TEXT NOT NULL, plan TEXT NOT NULL, batch INTEGER NOT NULL,
    version TEXT NOT NULL, loglik REAL NOT NULL, kl REAL NOT NULL, tokens INTEGER NOT NULL,
    computed INTEGER NOT NULL, unshared INTEGER NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY (model_fingerprint, source, plan, batch, version)
);
CREATE TABLE IF NOT EXISTS searches (
    model_fingerprint TEXT NOT NULL, source TEXT NOT NULL, objective TEXT NOT NULL, space TEXT NOT NULL,
    held_out TEXT NOT NULL, method TEXT NOT NULL, remove INTEGER NOT NULL, version TEXT NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (model_fingerprint, source, objective, space, held_out, method, remove, version)
);
CREATE TABLE IF NOT EXISTS matrices (
    model_fingerprint TEXT NOT NULL, plan TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL,
    csv TEXT NOT NULL, PRIMARY KEY (model_fingerprint, plan, name, source)
);
"""
NONE = -1  # a label field the variant does not use (n of swap, seed of skip, ...)


class StoreError(PaintersError):
    """The file is not a painters results store, or another painters version wrote it."""


@dataclass(frozen=True)
class Cell:
    """What identifies one stored result."""

    model_fingerprint: str
    plan: str
    task: str
    limit: int  # NONE: every document
    data_fingerprint: str


@dataclass(frozen=True)
class Piece:
    """One index of one part of a cell (`painters.tasks.evaluation.part_items`): its JSON value and compute time."""

    cell: Cell
    part: str
    index: int
    payload: object
    seconds: float


@dataclass(frozen=True)
class Finished:
    """A complete cell: its metrics and per-document records, stored in place of its pieces."""

    cell: Cell
    model: str
    metrics: dict[str, float]
    items: int
    seconds: float
    records: list[dict]


@dataclass(frozen=True)
class Label:
    """A grid point that produced a plan; fields the variant does not use are NONE."""

    variant: str
    n: int = NONE
    seed: int = NONE
    loops: int = NONE
    layer: int = NONE


class Store:
    """An open results store; use as a context manager or call `close()`.

    `read_only` opens an existing store without ever writing to it (nor beside it: no -wal or -shm files
    unless a writer left some), so reading works on read-only files and media.
    """

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            if read_only:
                self._db = sqlite3.connect(_read_only_uri(self.path), uri=True, isolation_level=None)
                self._check()
                return
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            if existed:
                self._check()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_TABLES)
            self._stamp()
        except sqlite3.DatabaseError as error:
            raise self._unreadable(error, read_only) from None

    def _unreadable(self, error: sqlite3.DatabaseError, read_only: bool) -> StoreError:
        """What to say about a store SQLite cannot open: damaged, unreachable for its write-ahead log, or no store."""
        if "malformed" in str(error) or "disk image" in str(error):
            return StoreError(f"'{self.path}' is damaged ({error}): painters neither reads nor writes it; "
                              "restore it from a copy, or give a new --db file")  # fmt: skip
        if read_only and "unable to open" in str(error) and _pending_log(self.path):
            return StoreError(f"'{self.path}' has changes in its write-ahead log that SQLite can only read with "
                              f"write access to '{self.path.parent}': copy the store and its -wal file to a "
                              "writable folder")  # fmt: skip
        return StoreError(f"'{self.path}' is not a painters results store ({error}): give a new --db file")

    def _check(self) -> None:
        """The file is an intact store of this version; an older schema is readable, and a writer upgrades it."""
        verdict = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":  # a damaged file is neither read (wrong numbers) nor written (more damage)
            raise sqlite3.DatabaseError(f"database disk image is malformed: {' '.join(verdict.split())[:200]}")
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        meta = dict(self._db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        if meta.get("format") != FORMAT:
            raise StoreError(f"'{self.path}' is not a painters results store: give a new --db file")
        if meta.get("version") != __version__ or meta.get("schema") not in (str(SCHEMA), *MIGRATES):
            raise StoreError(
                f"'{self.path}' was written by painters {meta.get('version')} (schema {meta.get('schema')}); "
                f"this is painters {__version__} (schema {SCHEMA}): give a new --db file or use that version"
            )

    def _stamp(self) -> None:
        """Mark a new store, or an upgraded one (its new tables were just created), as this schema."""
        with self._transaction():
            for key, value in (("format", FORMAT), ("schema", str(SCHEMA)), ("version", __version__)):
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def has(self, cell: Cell) -> bool:
        row = self._db.execute(f"SELECT 1 FROM cells WHERE {_WHERE}", (*_key(cell), __version__)).fetchone()
        return row is not None

    def put(self, cell: Cell, model: str, metrics: dict[str, float], items: int, seconds: float) -> None:
        """Insert one finished cell (without records) in one transaction; a cell already stored is left as it is."""
        self.put_pieces([], [Finished(cell, model, metrics, items, seconds, [])])

    def put_pieces(self, pieces: list[Piece], finished: list[Finished]) -> None:
        """In one transaction: store pieces (one already stored is kept), and complete cells in place of theirs."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO pieces VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*_key(p.cell), __version__, p.part, p.index, json.dumps(p.payload), p.seconds) for p in pieces],
            )
            for done in finished:
                values = {
                    name: None if isinstance(v, float) and math.isnan(v) else v for name, v in done.metrics.items()
                }
                key = (*_key(done.cell), __version__)
                self._db.execute(
                    "INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, datetime('now'))",
                    (done.model, *key, json.dumps(values, allow_nan=False), done.items, done.seconds),
                )
                if done.records:
                    self._db.execute("INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     (*key, json.dumps(done.records)))  # fmt: skip
                self._db.execute(f"DELETE FROM pieces WHERE {_WHERE}", key)

    def pieces(self, cell: Cell) -> dict[str, dict[int, tuple[object, float]]]:
        """A cell's stored pieces: per part, each index's (payload, seconds)."""
        found: dict[str, dict[int, tuple[object, float]]] = {}
        rows = self._db.execute(
            f"SELECT part, idx, payload, seconds FROM pieces WHERE {_WHERE}", (*_key(cell), __version__)
        )
        for part, index, payload, seconds in rows:
            found.setdefault(part, {})[index] = (json.loads(payload), seconds)
        return found

    def indices(self, cell: Cell, part: str) -> set[int]:
        """The indices of a part of a cell whose pieces are stored."""
        query = f"SELECT idx FROM pieces WHERE {_WHERE} AND part=?"
        return {index for (index,) in self._db.execute(query, (*_key(cell), __version__, part))}

    def samples(self) -> list[sqlite3.Row]:
        """Every complete cell's per-document records (JSON); a store of schema 1 has none."""
        if not self._has_table("samples"):
            return []
        return self.query(
            'SELECT model_fingerprint, plan, task, "limit", data_fingerprint, version, records FROM samples '
            'ORDER BY task, "limit", plan'
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (the connection is in autocommit mode)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def label(self, model_fingerprint: str, plan: str, label: Label) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?, ?)",
                (model_fingerprint, plan, label.variant, label.n, label.seed, label.loops, label.layer),
            )

    def put_run(self, cell: Cell, environment: dict[str, object]) -> None:
        """Record what computed a task's cells (library versions, dtype, device, command): the report shows it."""
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                (cell.model_fingerprint, cell.task, cell.limit, cell.data_fingerprint, __version__,
                 json.dumps(environment, sort_keys=True, default=str)),
            )  # fmt: skip

    def runs(self) -> list[sqlite3.Row]:
        """Every recorded run; a store written before runs were recorded has none."""
        if not self._has_table("runs"):
            return []
        return self.query('SELECT task, "limit", data_fingerprint, version, environment FROM runs')

    def speeds(self) -> list[sqlite3.Row]:
        """Every plan's measured speed-up; a store written before speeds were measured has none."""
        if not self._has_table("speeds"):
            return []
        return self.query("SELECT plan, speedup, shape, device FROM speeds")

    def _has_table(self, name: str) -> bool:
        """Whether the store has a table (a store opened read-only keeps the tables of the version that wrote it)."""
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def has_speed(self, model_fingerprint: str, plan: str) -> bool:
        row = self._db.execute("SELECT 1 FROM speeds WHERE model_fingerprint=? AND plan=?", (model_fingerprint, plan))
        return row.fetchone() is not None

    def put_speed(self, model_fingerprint: str, plan: str, speedup: float, shape: str, device: str) -> None:
        """A plan's measured speed-up over the full model; measured once per plan, so a stored one is kept."""
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO speeds VALUES (?, ?, ?, ?, ?)", (model_fingerprint, plan, speedup, shape, device)
            )

    def put_model(self, model_fingerprint: str, facts: dict[str, object]) -> None:
        """What a report needs to know of the model (`painters.study.units.Worker.describe`)."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO models VALUES (?, ?)", (model_fingerprint, json.dumps(facts)))

    def model_facts(self) -> dict[str, object]:
        """The stored model's facts; empty for a store written before painters recorded them."""
        rows = self.query("SELECT facts FROM models") if self._has_table("models") else []
        return json.loads(rows[0]["facts"]) if rows else {}

    def put_calibration(self, model_fingerprint: str, source: str, rows: list[tuple]) -> None:
        """In one transaction: (plan, batch, loglik, kl, tokens, computed, unshared, seconds) rows of a
        calibration source's batches; a row already stored is kept."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO calibration VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(model_fingerprint, source, plan, batch, __version__, *rest) for plan, batch, *rest in rows],
            )

    def calibration(self, model_fingerprint: str, source: str) -> list[sqlite3.Row]:
        """Every stored calibration row of a source."""
        if not self._has_table("calibration"):
            return []
        return self.query(
            "SELECT plan, batch, loglik, kl, tokens, computed, unshared, seconds FROM calibration "
            "WHERE model_fingerprint=? AND source=? AND version=?", (model_fingerprint, source, __version__)
        )  # fmt: skip

    def put_search(self, model_fingerprint: str, key: tuple[str, str, str, str, str, int], record: dict) -> None:
        """A search method's result at one budget; `key` is (source, objective, space, held_out, method, remove),
        what makes two searches' records comparable (`painters.plan_search.run`)."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO searches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (model_fingerprint, *key, __version__, json.dumps(record)))  # fmt: skip

    def searches(self) -> list[dict]:
        """This version's stored search records, each with its key (`run`: source, objective, space, held_out)."""
        if not self._has_table("searches"):
            return []
        rows = self.query("SELECT source, objective, space, held_out, record FROM searches WHERE version = ? "
                          "ORDER BY source, objective, space, held_out, remove, method", (__version__,))  # fmt: skip
        return [{**json.loads(row["record"]), "run": list(row)[:4]} for row in rows]

    def put_matrix(self, model_fingerprint: str, plan: str, name: str, source: str, csv: str) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO matrices VALUES (?, ?, ?, ?, ?)", (model_fingerprint, plan, name, source, csv)
            )

    def query(self, sql: str, parameters: tuple = ()) -> list[sqlite3.Row]:
        """Rows of a read-only query, addressable by column name."""
        self._db.row_factory = sqlite3.Row
        try:
            return self._db.execute(sql, parameters).fetchall()
        finally:
            self._db.row_factory = None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_WHERE = 'model_fingerprint=? AND plan=? AND task=? AND "limit"=? AND data_fingerprint=? AND version=?'


def _key(cell: Cell) -> tuple:
    return (cell.model_fingerprint, cell.plan, cell.task, cell.limit, cell.data_fingerprint)


def _read_only_uri(path: Path) -> str:
    """An SQLite URI that never writes: immutable unless a writer's WAL holds cells not yet in the file."""
    return f"{path.resolve().as_uri()}?mode=ro{'' if _pending_log(path) else '&immutable=1'}"


def _pending_log(path: Path) -> bool:
    """Whether a writer left cells in the store's write-ahead log that are not yet in the file."""
    wal = path.with_name(path.name + "-wal")
    return wal.exists() and wal.stat().st_size > 0


def open_existing(path: str | Path) -> Store:
    """A store that must already exist, opened read-only: a missing or empty file is an error, not a new store."""
    if not Path(path).is_file():
        raise StoreError(f"no results store at '{path}': run `painters sweep --db {path}` first")
    if Path(path).stat().st_size == 0:
        raise StoreError(f"'{path}' is an empty file, not a painters results store: run `painters sweep --db` first")
    return Store(path, read_only=True)


def check_model(store: Store, fingerprint: str) -> None:
    """Refuse to add another model's cells to a store: a store (and its report) holds one model."""
    rows = store.query("SELECT DISTINCT model FROM cells WHERE model_fingerprint != ?", (fingerprint,))
    if rows:
        raise StoreError(
            f"'{store.path}' holds results of another model ({rows[0]['model']}; fingerprints differ): "
            "a store holds one model, give a new --db"
        )
