"""The service's durable store: items, users and feedback in one SQLite file.

SQLite runs in WAL mode with ``synchronous=FULL``: every write is one transaction that is on
disk (the WAL fsynced) before the call returns, so a write the API acknowledged survives a
``kill -9`` of the server (and a power cut). While the service runs, recent writes live in the
``-wal`` file beside the store (part of it: copy all three files, or stop the service first);
`Store.checkpoint` (run when the service stops and after a user is deleted) moves them into the
store file itself. Readers use their own per-thread connections and never block the writer.
``secure_delete`` is on, and a deleted user is checkpointed at once, so their rows are
overwritten in the file rather than left in free pages or the WAL.

Writes go through one connection under a lock (SQLite allows one writer at a time anyway).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fewrec.errors import FewrecError, sqlite_busy
from fewrec.serve.errors import UnavailableError
from fewrec.serve.schemas import nfc

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
"""2: feedback keeps the top of the rating scale a `rating` was given on (``scale``); a
version-1 store gains the column when opened (its ratings read on the model's scale).
3: ``latest`` holds, per user and item, the event that decides how they liked it, kept on
every write, so a request reads a row per item however many events the user has (it had read
every event: 224 ms for a user of 50,000 events on 1,682 items, now 7 ms; 510 -> 243 ms on
31,630 items); an older store gains it when opened, in one pass over its events."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    title TEXT,
    text TEXT,
    fields TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_seq ON items(seq);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    text TEXT,
    info TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    item TEXT NOT NULL,
    kind TEXT NOT NULL,
    value REAL,
    ts REAL NOT NULL,
    scale REAL
);
CREATE INDEX IF NOT EXISTS feedback_user ON feedback(user, seq);
CREATE TABLE IF NOT EXISTS forgotten (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS latest (
    user TEXT NOT NULL,
    item TEXT NOT NULL,
    ts REAL,
    seq INTEGER,
    PRIMARY KEY (user, item)
) WITHOUT ROWID;
"""
# ``latest``: a row per item a user has an event on; ``ts`` and ``seq`` are those of the newest
# (by timestamp, then arrival) taste event on it, NULL where they only viewed it.


@dataclass
class ItemRecord:
    """An item as stored: its text fields and any other fields (JSON values).

    Attributes:
        id: external item id.
        title: display title (also text for the encoder).
        text: free description.
        fields: other fields, e.g. ``{"year": "1995", "genres": ["Comedy"]}``.
        deleted: a tombstone (the item stays known but is never recommended).
        seq: store-wide write counter at the last change (for syncing a new model).
        updated: unix time of the last change.
    """

    id: str
    title: str | None = None
    text: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    seq: int = 0
    updated: float = 0.0


@dataclass
class UserRecord:
    """A user as stored: optional free text and side info."""

    id: str
    text: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0


TASTE_KINDS = ("like", "click", "dislike", "rating")
"""Feedback kinds that say how a user liked an item (a view only marks it seen); per item, the
newest by timestamp decides."""

_TASTE_SQL = ", ".join(repr(k) for k in TASTE_KINDS)

_LATEST_UPSERT = (
    "INSERT INTO latest (user, item, ts, seq) VALUES (?, ?, ?, ?) ON CONFLICT (user, item) DO UPDATE "
    "SET ts = excluded.ts, seq = excluded.seq WHERE excluded.seq IS NOT NULL "
    "AND (latest.seq IS NULL OR (excluded.ts, excluded.seq) > (latest.ts, latest.seq))"
)
"""Keep ``latest`` on a write: a taste event replaces an older one (a late-arriving event
with an older timestamp does not), and a view only adds the item."""

_LATEST_FROM_FEEDBACK = (
    "INSERT INTO latest (user, item, ts, seq) SELECT user, item, "
    "CASE WHEN taste THEN ts END, CASE WHEN taste THEN seq END FROM ("
    f" SELECT user, item, ts, seq, kind IN ({_TASTE_SQL}) AS taste, ROW_NUMBER() OVER ("
    f"  PARTITION BY user, item ORDER BY kind IN ({_TASTE_SQL}) DESC, ts DESC, seq DESC) AS rn"
    " FROM feedback) WHERE rn = 1"
)
"""``latest`` of a store written before it was kept (schema 1 and 2)."""
_LATEST_OF_USER = _LATEST_FROM_FEEDBACK.replace(" FROM feedback)", " FROM feedback WHERE user = ?)")
"""``latest`` rows of one user (`_ids_to_nfc`)."""


@dataclass
class FeedbackRecord:
    """One feedback event (``kind``: view, click, like, dislike or rating)."""

    user: str
    item: str
    kind: str
    value: float | None = None
    ts: float = 0.0
    seq: int = 0
    scale: float | None = None
    """The top of the rating scale a ``rating`` was given on (5 for stars, 1 on implicit data),
    so that a model of another scale reads it as meant; None: unknown (the model's)."""


class Store:
    """Durable SQLite store of items, users and feedback (thread-safe).

    Args:
        path: the database file (its folder is created); ``":memory:"`` is refused because the
            service reads from several connections.
        timeout: seconds a connection waits for a lock before failing.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0):
        if str(path) == ":memory:":
            raise FewrecError("the store needs a file path, not ':memory:'. Fix: pass e.g. data/fewrec.db")
        self.path = Path(path).expanduser()
        self.timeout = timeout
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._write_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FewrecError(
                f"cannot make the store's folder {self.path.parent} ({exc.strerror or exc}). "
                "Fix: give --store a path in a folder that exists or can be made"
            ) from None
        try:
            self._check_not_foreign()
            self._writer = self._connect()
            problem = self._writer.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {problem}")
            self._set_up()
            # a store that cannot be written (a read-only file) fails here, not at every write
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                self._writer.execute("UPDATE meta SET value = value WHERE key = 'schema'")
            finally:
                self._writer.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise FewrecError(_open_error(self.path, exc)) from None

    def _set_up(self) -> None:
        """Create the tables and the schema row, or migrate an older store, in one write
        transaction: two processes opening a new store at once (two services, a service and a
        script) had both found no schema row, and the later one's insert failed to open the
        store ("UNIQUE constraint failed: meta.key"), as the later of two migrations would
        have ("duplicate column name")."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")  # (waits for the other process's set-up)
        try:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) in (1, 2):
                if int(row[0]) == 1:  # a rating's scale was not kept: the model's is assumed
                    conn.execute("ALTER TABLE feedback ADD COLUMN scale REAL")
                log.info("%s: indexing each user's latest event per item (once, for schema 3)", self.path)
                conn.execute("DELETE FROM latest")
                conn.execute(_LATEST_FROM_FEEDBACK)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise FewrecError(
                    f"{self.path}: store schema {row[0]}, this fewrec reads {SCHEMA_VERSION}. "
                    "Fix: use the fewrec version that wrote it, or start a new store file."
                )
            _ids_to_nfc(conn, self.path)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _check_not_foreign(self) -> None:
        """Refuse, before writing anything to it, a SQLite file of something else: the store's
        tables were added to it (and WAL mode set) when their names did not clash."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise FewrecError(
                    f"{self.path} is not a SQLite database, so not a fewrec store (or one damaged at its "
                    "start); it was left as it is. Fix: give --store a new file or a fewrec store"
                )
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.timeout)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            schema = "meta" in names and conn.execute("SELECT 1 FROM meta WHERE key = 'schema'").fetchone()
            # a store stopped between making its tables and writing its schema row: its own tables
            # only, and its meta table (made first) empty; another app's lone `users` table is not
            half_made = "meta" in names and names <= _OWN_TABLES
            half_made = half_made and conn.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0
        finally:
            conn.close()
        if names and not schema and not half_made:
            raise FewrecError(
                f"{self.path} is a SQLite database of something else (tables {sorted(names)[:5]}), not a "
                "fewrec store; it was left as it is. Fix: give --store a new file or a fewrec store"
            )

    # ------------------------------------------------------------------ connections
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        # the switch to WAL does not wait out another process's lock as a write does: two
        # services opening a new store at once had one fail at start ("database is locked")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if not sqlite_busy(exc) or time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(0.02)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable write transaction (committed, WAL fsynced, when the block exits)."""
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # (SQLite rolls back itself on a full disk)
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                raise StoreWriteError(self.path, exc) from None

    def _write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run statements in one durable transaction; returns each statement's lastrowid."""
        with self._transaction() as conn:
            return [conn.execute(sql, args).lastrowid or 0 for sql, args in statements]

    def checkpoint(self, wait: float = 0.25) -> bool:
        """Move the writes in the ``-wal`` file into the store file and empty the WAL, so that
        the file alone holds everything (a backup of it, a deleted user overwritten in it).

        On a connection of its own, waiting at most ``wait`` seconds: another program reading
        the store (a backup, a query) holds the checkpoint off, and it had held every write of
        the service with it, for up to the store's 30 s timeout. Returns whether it completed
        (if not, the next one, or the one when the service stops, moves the rest)."""
        busy = self._checkpoint_once(wait)
        if busy:  # a write of this store in progress: once more, holding the next ones back
            with self._write_lock:
                busy = self._checkpoint_once(wait)
        if busy:
            log.warning(
                "the store %s is busy (another program reading it): its -wal file keeps some writes "
                "until the next checkpoint",
                self.path,
            )
        return not busy

    def _checkpoint_once(self, wait: float) -> bool:
        """One TRUNCATE checkpoint on a connection of its own; whether it was kept from finishing."""
        try:
            conn = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
                return bool(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.warning("could not checkpoint the store %s: %s", self.path, exc)
            return True

    def size_bytes(self) -> int:
        """The store's bytes on disk: its file and its write-ahead log."""
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.exists())

    def used_bytes(self) -> int:
        """The bytes its data takes: its pages, less those deletes emptied (SQLite keeps them in
        the file for later writes, so a store full by its file size stayed full after the
        deletes its 507 asked for). A page that deletes left part full still counts whole."""
        conn = self._reader()
        pages, free, size = (
            conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size")
        )
        return int((pages - free) * size)

    def close(self) -> None:
        """Close every connection (checkpointing the WAL)."""
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()

    # ------------------------------------------------------------------ items
    @staticmethod
    def _next_item_seq(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0]) + 1

    def upsert_items(self, items: Sequence[ItemRecord]) -> list[ItemRecord]:
        """Create or replace items (an upsert also revives a deleted item); returns them with
        their new ``seq``."""
        now = time.time()
        out = []
        with self._transaction() as conn:
            base = self._next_item_seq(conn)
            for i, it in enumerate(items):
                rec = ItemRecord(it.id, it.title, it.text, dict(it.fields), False, base + i, now)
                out.append(rec)
                conn.execute(
                    "INSERT INTO items (id, title, text, fields, deleted, seq, updated) "
                    "VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT(id) DO UPDATE SET title = excluded.title, "
                    "text = excluded.text, fields = excluded.fields, deleted = 0, seq = excluded.seq, "
                    "updated = excluded.updated",
                    (rec.id, rec.title, rec.text, json.dumps(rec.fields), rec.seq, now),
                )
        return out

    def delete_item(self, item_id: str) -> ItemRecord:
        """Tombstone an item (it may be a model item the store never saw); returns the record."""
        now = time.time()
        with self._transaction() as conn:
            seq = self._next_item_seq(conn)
            conn.execute(
                "INSERT INTO items (id, title, text, fields, deleted, seq, updated) "
                "VALUES (?, NULL, NULL, '{}', 1, ?, ?) ON CONFLICT(id) DO UPDATE SET deleted = 1, "
                "seq = excluded.seq, updated = excluded.updated",
                (item_id, seq, now),
            )
        return ItemRecord(item_id, deleted=True, seq=seq, updated=now)

    def get_item(self, item_id: str) -> ItemRecord | None:
        """One item (tombstones included), or None."""
        row = (
            self._reader()
            .execute(
                "SELECT id, title, text, fields, deleted, seq, updated FROM items WHERE id = ?", (item_id,)
            )
            .fetchone()
        )
        return _item(row) if row else None

    def items(self, *, since_seq: int = 0, include_deleted: bool = True) -> list[ItemRecord]:
        """Items changed after ``since_seq`` in write order."""
        sql = "SELECT id, title, text, fields, deleted, seq, updated FROM items WHERE seq > ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        rows = self._reader().execute(sql + " ORDER BY seq", (since_seq,)).fetchall()
        return [_item(r) for r in rows]

    def item_seq(self) -> int:
        """The latest item write counter (0 for none)."""
        return int(self._reader().execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0])

    # ------------------------------------------------------------------ users
    def upsert_user(self, user: UserRecord) -> UserRecord:
        """Create or replace a user's text and side info."""
        now = time.time()
        old = self.get_user(user.id)
        created = old.created if old else now
        self._write(
            [
                (
                    "INSERT INTO users (id, text, info, created, updated) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET text = excluded.text, info = excluded.info, "
                    "updated = excluded.updated",
                    (user.id, user.text, json.dumps(user.info), created, now),
                )
            ]
        )
        return UserRecord(user.id, user.text, dict(user.info), created, now)

    def get_user(self, user_id: str) -> UserRecord | None:
        """A user's record, or None when the store has none."""
        row = (
            self._reader()
            .execute("SELECT id, text, info, created, updated FROM users WHERE id = ?", (user_id,))
            .fetchone()
        )
        return UserRecord(row[0], row[1], json.loads(row[2]), row[3], row[4]) if row else None

    def delete_user(self, user_id: str, *, known: bool = True) -> tuple[bool, int]:
        """Remove a user's record and every feedback event of theirs, and remember that the
        model's training history for this id must no longer be used.

        ``known``: whether a model trained on this id; if not, and the store has no record or
        event of theirs, nothing is written (an unknown id was remembered, on a 404, so that a
        model later swapped in that did train on it ignored that user's history).

        Returns:
            (whether a user record existed, how many feedback events were deleted).
        """
        with self._transaction() as conn:
            existed = conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is not None
            n_events = conn.execute("DELETE FROM feedback WHERE user = ?", (user_id,)).rowcount
            conn.execute("DELETE FROM latest WHERE user = ?", (user_id,))
            if not (existed or n_events or known):
                return False, 0
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
            conn.execute("INSERT OR IGNORE INTO forgotten (id) VALUES (?)", (user_id,))
        self.checkpoint()  # their rows are overwritten in the file (secure_delete), not kept in the WAL
        return existed, n_events

    def is_forgotten(self, user_id: str) -> bool:
        """Whether the user was deleted once (their model training history is then ignored)."""
        row = self._reader().execute("SELECT 1 FROM forgotten WHERE id = ?", (user_id,)).fetchone()
        return row is not None

    # ------------------------------------------------------------------ feedback
    def add_feedback(self, events: Sequence[FeedbackRecord]) -> list[FeedbackRecord]:
        """Append events in one durable transaction (creating users seen for the first time);
        returns them with their ``seq``."""
        return self.add_feedback_deciding(events)[0]

    def add_feedback_deciding(
        self, events: Sequence[FeedbackRecord]
    ) -> tuple[list[FeedbackRecord], dict[tuple[str, str], FeedbackRecord]]:
        """`add_feedback`, and per (user, item) of its taste events the event that decides how
        the user liked the item once they are written, read in the same transaction (read after
        it, another client's event written meanwhile made this one look outdated)."""
        now = time.time()
        with self._transaction() as conn:
            for user in dict.fromkeys(e.user for e in events):
                conn.execute(
                    "INSERT OR IGNORE INTO users (id, text, info, created, updated) "
                    "VALUES (?, NULL, '{}', ?, ?)",
                    (user, now, now),
                )
            stored = []
            for e in events:
                ts = e.ts or now
                seq = conn.execute(
                    "INSERT INTO feedback (user, item, kind, value, ts, scale) VALUES (?, ?, ?, ?, ?, ?)",
                    (e.user, e.item, e.kind, e.value, ts, e.scale),
                ).lastrowid
                taste = e.kind in TASTE_KINDS
                conn.execute(_LATEST_UPSERT, (e.user, e.item, ts if taste else None, seq if taste else None))
                stored.append(FeedbackRecord(e.user, e.item, e.kind, e.value, ts, seq or 0, e.scale))
            deciding = {}
            for user, item in dict.fromkeys((e.user, e.item) for e in stored if e.kind in TASTE_KINDS):
                row = conn.execute(
                    "SELECT f.user, f.item, f.kind, f.value, f.ts, f.seq, f.scale FROM latest AS l "
                    "JOIN feedback AS f ON f.seq = l.seq WHERE l.user = ? AND l.item = ?",
                    (user, item),
                ).fetchone()
                if row is not None:
                    deciding[(user, item)] = FeedbackRecord(*row)
        return stored, deciding

    def feedback(self, user_id: str, limit: int = 1000) -> list[FeedbackRecord]:
        """A user's latest ``limit`` events to arrive, in that order (their timestamps aside)."""
        rows = (
            self._reader()
            .execute(
                "SELECT user, item, kind, value, ts, seq, scale FROM feedback WHERE user = ? "
                "ORDER BY seq DESC LIMIT ?",
                (user_id, limit),
            )
            .fetchall()
        )
        return [FeedbackRecord(*r) for r in reversed(rows)]

    def user_state(self, user_id: str) -> tuple[list[str], list[FeedbackRecord]]:
        """Every item the user has an event on, and per item the latest (by timestamp, then
        arrival) event that says how they liked it (like, click, dislike or rating): all their
        events count, however many, and a late-arriving event does not override a newer one."""
        rows = (
            self._reader()
            .execute(  # one statement, so one snapshot (the `latest` table, kept on every write)
                "SELECT l.item, f.user, f.item, f.kind, f.value, f.ts, f.seq, f.scale FROM latest AS l "
                "LEFT JOIN feedback AS f ON f.seq = l.seq WHERE l.user = ? ORDER BY f.ts, f.seq",
                (user_id,),
            )
            .fetchall()
        )
        return [r[0] for r in rows], [FeedbackRecord(*r[1:]) for r in rows if r[1] is not None]

    def count_feedback(self, user_id: str) -> int:
        """How many events a user has."""
        row = self._reader().execute("SELECT COUNT(*) FROM feedback WHERE user = ?", (user_id,)).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        """Row counts (items, deleted items, users, feedback events)."""
        c = self._reader()
        return {
            "items": int(c.execute("SELECT COUNT(*) FROM items WHERE deleted = 0").fetchone()[0]),
            "deleted_items": int(c.execute("SELECT COUNT(*) FROM items WHERE deleted = 1").fetchone()[0]),
            "users": int(c.execute("SELECT COUNT(*) FROM users").fetchone()[0]),
            "feedback": int(c.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]),
        }


class StoreWriteError(UnavailableError):
    """The store could not be written (a full disk, a read-only file, another process writing
    for longer than the timeout): the service answers 503."""

    def __init__(self, path: Path, exc: sqlite3.Error):
        held = sqlite_busy(exc)
        super().__init__(
            f"the store {path} could not be written ({exc}), so nothing of this request was stored",
            fix="retry; another process was writing to the store (run one service process per store file)"
            if held
            else "free disk space, or make the store file and its folder writable",
        )


_OWN_TABLES = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", _SCHEMA)) | {"sqlite_sequence"}
"""The tables a store has: those of its schema, and SQLite's own for AUTOINCREMENT."""


def _ids_to_nfc(conn: sqlite3.Connection, path: Path) -> None:
    """User and item ids in Unicode normal form C, once per store (its meta row ``ids_nfc``):
    the service reads every id so since 2026-12-08, and a user or item an older store keeps
    under another form ("cafe\u0301", decomposed) could no longer be reached, nor erased. Their
    feedback moves to the composed id; of two records of one id, the one updated last is kept
    (with the first one's creation); each user whose feedback moved has its `latest` rows made
    again (the whole table took 9 s on 2,000,000 events for one user moved)."""
    if conn.execute("SELECT 1 FROM meta WHERE key = 'ids_nfc'").fetchone():
        return
    touched: set[str] = set()  # users whose events moved (or name a moved item)

    def moved(ids: set[str]) -> dict[str, str]:
        return {raw: form for raw in ids if (form := nfc(raw)) != raw}

    def merge(table: str, raw: str, form: str, created: str | None) -> None:
        """``table``'s row ``raw`` as ``form``: the later updated of the two, the first created."""
        if created is not None:
            conn.execute(
                f"UPDATE {table} SET {created} = (SELECT min({created}) FROM {table} WHERE id IN (?, ?)) "
                "WHERE id IN (?, ?)",
                (raw, form, raw, form),
            )
        conn.execute(
            f"DELETE FROM {table} WHERE id = ? AND EXISTS (SELECT 1 FROM {table} WHERE id = ? AND updated >= "
            f"(SELECT updated FROM {table} WHERE id = ?))",
            (raw, form, raw),
        )
        conn.execute(
            f"DELETE FROM {table} WHERE id = ? AND EXISTS (SELECT 1 FROM {table} WHERE id = ?)", (form, raw)
        )
        conn.execute(f"UPDATE {table} SET id = ? WHERE id = ?", (form, raw))

    users = {r[0] for r in conn.execute("SELECT id FROM users UNION SELECT id FROM forgotten")}
    users |= {r[0] for r in conn.execute("SELECT DISTINCT user FROM feedback")}
    moved_users = moved(users)
    for raw, form in moved_users.items():
        if conn.execute("UPDATE feedback SET user = ? WHERE user = ?", (form, raw)).rowcount:
            touched.update((raw, form))
        merge("users", raw, form, "created")
        conn.execute("INSERT OR IGNORE INTO forgotten (id) SELECT ? FROM forgotten WHERE id = ?", (form, raw))
        conn.execute("DELETE FROM forgotten WHERE id = ?", (raw,))
    items = {r[0] for r in conn.execute("SELECT id FROM items UNION SELECT DISTINCT item FROM feedback")}
    moved_items = moved(items)
    for raw, form in moved_items.items():
        touched |= {r[0] for r in conn.execute("SELECT DISTINCT user FROM feedback WHERE item = ?", (raw,))}
        conn.execute("UPDATE feedback SET item = ? WHERE item = ?", (form, raw))
        merge("items", raw, form, None)
    for user in touched:
        conn.execute("DELETE FROM latest WHERE user = ?", (user,))
        conn.execute(_LATEST_OF_USER, (user,))
    if moved_users or moved_items:
        log.info(
            "%s: %d user and %d item ids written in Unicode normal form C",
            path,
            len(moved_users),
            len(moved_items),
        )
    conn.execute("INSERT INTO meta VALUES ('ids_nfc', '1')")


def _open_error(path: Path, exc: Exception) -> str:
    """What went wrong opening the store, with the fix for that case."""
    text = str(exc)
    if "malformed" in text or "not a database" in text:
        fix = f"restore a backup, or recover what is left with: sqlite3 {path} .recover | sqlite3 new.db"
        return f"the store {path} is damaged ({text}). Fix: {fix}"
    if "locked" in text or "busy" in text:
        return f"cannot open the store {path} ({text}): another process was writing to it. Fix: retry"
    if "readonly" in text or "unable to open" in text:
        return f"cannot open the store {path} for writing ({text}). Fix: check the path is a writable file."
    return f"cannot open the store {path} ({text}). Fix: check the path is a writable fewrec store file."


def _item(row: tuple) -> ItemRecord:
    return ItemRecord(row[0], row[1], row[2], json.loads(row[3]), bool(row[4]), int(row[5]), float(row[6]))
