"""SQLite storage of the org's records: one table per object, laid out for fast Bulk upserts.

Each record is one row keyed by the serial inside its Id (the rowid): its field values (a dict encoded with
``marshal``, several times faster to write and read than JSON, which matters at a million rows per Bulk job),
plus columns holding the match key of every External ID / unique field (``k_<Field>``) and the target Id of
every reference field (``r_<Field>``). The tables have no secondary index: the match keys of live records are
held in memory (``KeyIndex``, loaded from the ``k_`` columns at start-up), so a Bulk load appends rows in rowid
order and upsert matching, uniqueness checks and parent lookups are dictionary lookups; the ``r_`` columns
serve the rare cascade on a parent's deletion with one scan. The file lives in the data folder, so a restarted
emulator serves the same org.
"""

from __future__ import annotations

import json
import marshal
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from salesforce_emulator import ids
from salesforce_emulator.key_index import KeyIndex, KeyJournal
from salesforce_emulator.schema import FieldDef, ObjectDef, OrgSchema

# SQLite's default limit on host parameters is 32766 since 3.32; stay well under it per IN (...) lookup.
LOOKUP_CHUNK = 900
# Ids start at a serial that gives realistic-looking values (e.g. 0015g00000ABCDE...).
FIRST_SERIAL = 62**5
# Bumped when the table layout changes; stored in the database's user_version.
LAYOUT_VERSION = 3


def encode_record(record: dict) -> bytes:
    """A record's field values as stored (marshal format 4: stable since Python 3.4)."""
    return marshal.dumps(record, 4)


decode_record = marshal.loads


class StoreError(ValueError):
    """The data folder's database cannot be used by this emulator."""


def key_column(field_name: str) -> str:
    return f"k_{field_name}"


def ref_column(field_name: str) -> str:
    return f"r_{field_name}"


def match_key(f: FieldDef, value: object) -> str | None:
    """The stored match key of a value of an External ID / unique field.

    Unique text External IDs match case-insensitively unless the field is case-sensitive, as in Salesforce.
    """
    if type(value) is str:
        if not value:
            return None
        return value if f.case_sensitive or not f.unique else value.lower()
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return text if f.case_sensitive or not f.unique else text.lower()


class ObjectTable:
    """The layout of one object's table: its name and its key and reference columns."""

    def __init__(self, obj: ObjectDef) -> None:
        self.obj = obj
        self.name = f"obj_{obj.name}"
        # Auto-number names are idLookup fields too, but an index on them would slow every Bulk insert for a
        # rarely used lookup; they are matched by a scan instead.
        self.key_fields: list[FieldDef] = [
            f for f in obj.fields.values()
            if (f.external_id or f.unique or f.id_lookup) and f.type != "id" and not f.auto_number
        ]
        self.key_names = {f.name for f in self.key_fields}
        self._key_specs = [(f, f.name, f.unique and not f.case_sensitive) for f in self.key_fields]
        self.ref_fields: list[FieldDef] = [f for f in obj.fields.values() if f.type == "reference"]
        self._ref_names = [f.name for f in self.ref_fields]
        self.extra_columns = [key_column(f.name) for f in self.key_fields] + [ref_column(f.name) for f in self.ref_fields]
        # The in-memory match-key index of each key field, in ``key_fields`` order (filled by the Store).
        self.key_indexes = [KeyIndex() for _ in self.key_fields]
        self._index_by_field = dict(zip(self.key_names_in_order(), self.key_indexes))
        columns = ", ".join(["seq", "id", "deleted", "data", *self.extra_columns])
        marks = ", ".join("?" * (4 + len(self.extra_columns)))
        self.insert_sql = f'INSERT INTO "{self.name}" ({columns}) VALUES ({marks})'
        sets = ", ".join(f"{c} = ?" for c in ["deleted", "data", *self.extra_columns])
        self.update_sql = f'UPDATE "{self.name}" SET {sets} WHERE seq = ?'

        self.row_values = self._compile_row_values()
        self.insert_row = self._compile_insert_row()

    def key_names_in_order(self) -> list[str]:
        return [f.name for f in self.key_fields]

    def key_index(self, field_name: str) -> KeyIndex:
        """The match-key index of key field ``field_name``."""
        return self._index_by_field[field_name]

    def key_values(self, record: dict) -> tuple[str | None, ...]:
        """The match keys of ``record`` (in ``key_fields`` order)."""
        return self.row_values(record)[:len(self.key_fields)]

    def _column_expressions(self) -> tuple[list[str], dict[str, object]]:
        """Expressions computing the key and reference column values from ``get`` (a record's ``get``)."""
        ns: dict[str, object] = {"match_key": match_key}
        exprs = []
        for n, (f, name, lower) in enumerate(self._key_specs):
            ns[f"f{n}"] = f
            text = "(v.lower() or None)" if lower else "(v or None)"
            exprs.append(f"({text} if type(v := get({name!r})) is str else match_key(f{n}, v))")
        exprs += [f"get({name!r})" for name in self._ref_names]
        return exprs, ns

    def _compile_row_values(self) -> Callable[[dict], tuple]:
        """``row_values(record)``: the key and reference column values of ``record`` (in ``extra_columns``
        order), compiled per table because a Bulk load computes them for every row."""
        exprs, ns = self._column_expressions()
        code = f"def row_values(record):\n    get = record.get\n    return ({''.join(e + ', ' for e in exprs)})"
        exec(compile(code, f"<row values {self.name}>", "exec"), ns)
        return ns["row_values"]  # type: ignore[return-value]

    def _compile_insert_row(self) -> Callable[[int, str, dict], tuple]:
        """``insert_row(seq, id, record)``: the parameters of ``insert_sql`` for a new live record."""
        exprs, ns = self._column_expressions()
        ns["encode"] = encode_record
        code = ("def insert_row(seq, rid, record):\n    get = record.get\n"
                f"    return (seq, rid, 0, encode(record), {''.join(e + ', ' for e in exprs)})")
        exec(compile(code, f"<insert row {self.name}>", "exec"), ns)
        return ns["insert_row"]  # type: ignore[return-value]


class Store:
    """The SQLite database of one org. All access goes through ``lock`` (one writer, many threads)."""

    def __init__(self, path: Path, schema: OrgSchema) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # No fsync: committed data survives a process restart or crash (it is in the OS's buffers), only a power
        # cut or OS crash may lose the last transactions, which a local emulator can afford for Bulk-load speed.
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.execute("PRAGMA temp_store=MEMORY")
        self.tables: dict[str, ObjectTable] = {}
        self._schema = schema
        self._journal: KeyJournal | None = None
        self._create(schema)
        self._load_keys()

    def _create(self, schema: OrgSchema) -> None:
        with self.lock:
            layout = self.conn.execute("PRAGMA user_version").fetchone()[0]
            tables = self.conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'obj_%'").fetchone()[0]
            if layout != LAYOUT_VERSION and tables:
                raise StoreError(f"{self.path}: written by an older emulator (storage layout {layout}, this one "
                                 f"uses {LAYOUT_VERSION}); move the data folder away or start with another --data")
            self.conn.execute(f"PRAGMA user_version = {LAYOUT_VERSION}")
            self.conn.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            for obj in schema.objects.values():
                table = ObjectTable(obj)
                self.tables[obj.name] = table
                self.conn.execute(
                    # seq is the serial inside the record Id, so an Id lookup is a rowid lookup and Ids need
                    # no index of their own.
                    f'CREATE TABLE IF NOT EXISTS "{table.name}" (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,'
                    " deleted INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL)"
                )
                existing = {row[1] for row in self.conn.execute(f'PRAGMA table_info("{table.name}")')}
                for f in table.key_fields:
                    self._add_column(table, key_column(f.name), existing, f)
                for f in table.ref_fields:
                    self._add_column(table, ref_column(f.name), existing, f)

    def _add_column(self, table: ObjectTable, column: str, existing: set[str], f: FieldDef) -> None:
        if column not in existing:
            # A schema that gained a field since the data was written: add and fill the column.
            self.conn.execute(f'ALTER TABLE "{table.name}" ADD COLUMN {column} TEXT')
            for seq, data in list(self.conn.execute(f'SELECT seq, data FROM "{table.name}"')):
                raw = decode_record(data).get(f.name)
                value = match_key(f, raw) if column.startswith("k_") else raw
                self.conn.execute(f'UPDATE "{table.name}" SET {column} = ? WHERE seq = ?', (value, seq))
        # Earlier emulators indexed these columns in SQLite; the in-memory key indexes replace those indexes.
        self.conn.execute(f'DROP INDEX IF EXISTS "ix_{table.name}_{column}"')

    def _load_keys(self) -> None:
        """Fill the in-memory key indexes from the stored live records (one scan per table with key fields)."""
        with self.lock:
            for table in self.tables.values():
                if not table.key_fields:
                    continue
                columns = ", ".join(key_column(f.name) for f in table.key_fields)
                rows = self.conn.execute(f'SELECT seq, {columns} FROM "{table.name}" WHERE deleted = 0')
                indexes = table.key_indexes
                while batch := rows.fetchmany(50_000):
                    for position, index in enumerate(indexes, start=1):
                        index.add_many([(row[position], row[0]) for row in batch])

    def table(self, obj: str) -> ObjectTable:
        return self.tables[obj]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back if the block raises. The key indexes change only once it commits."""
        with self.lock:
            if self._journal is not None:
                raise RuntimeError("a write transaction is already open")
            self.conn.execute("BEGIN IMMEDIATE")
            journal = self._journal = KeyJournal()
            try:
                yield self.conn
            except BaseException:
                self._journal = None
                self.conn.execute("ROLLBACK")
                raise
            self._journal = None
            self.conn.execute("COMMIT")
            journal.apply(index for table in self.tables.values() for index in table.key_indexes)

    def _open_journal(self) -> KeyJournal:
        if self._journal is None:
            raise RuntimeError("writes go inside Store.transaction()")
        return self._journal

    # -- reads ------------------------------------------------------------------------------------------

    def _chunked_lookup(self, sql_head: str, values: Sequence[object], tail: str = "") -> Iterator[tuple]:
        if len(values) <= LOOKUP_CHUNK:
            if values:
                marks = ",".join("?" * len(values))
                yield from self.conn.execute(f"{sql_head} ({marks}){tail}", values)
            return
        # Large key sets go in as one JSON array: one statement, one index probe per key.
        yield from self.conn.execute(f"{sql_head} (SELECT value FROM json_each(?)){tail}", (json.dumps(values),))

    def fetch_by_ids(self, obj: str, record_ids: Iterable[str]) -> dict[str, tuple[bool, bytes]]:
        """``{id: (deleted, data)}`` for the records among ``record_ids`` (18-character) that exist."""
        table = self.tables[obj]
        prefix = table.obj.key_prefix
        serials = [s for s in (ids.serial_of(i, prefix) for i in dict.fromkeys(record_ids)) if s is not None]
        with self.lock:
            return {
                row[0]: (bool(row[1]), row[2])
                for row in self._chunked_lookup(f'SELECT id, deleted, data FROM "{table.name}" WHERE seq IN', serials)
            }

    def fetch_by_keys(self, obj: str, f: FieldDef, keys: Iterable[str], *, with_data: bool = True
                      ) -> dict[str, list[tuple[str, bytes | None]]]:
        """``{key: [(id, data), ...]}`` of live (not deleted) records whose ``f`` match key is in ``keys``
        (``data`` None unless ``with_data``); ``f`` must be one of the table's key fields."""
        table = self.tables[obj]
        index = table.key_index(f.name)
        prefix = table.obj.key_prefix
        with self.lock:
            hits = {key: seqs for key in dict.fromkeys(keys) if (seqs := index.seqs(key))}
            if not with_data:
                return {key: [(ids.make_id(prefix, seq), None) for seq in seqs] for key, seqs in hits.items()}
            stored = {seq: (rid, data) for seq, rid, data in self._chunked_lookup(
                f'SELECT seq, id, data FROM "{table.name}" WHERE seq IN', [s for seqs in hits.values() for s in seqs])}
            return {key: [stored[seq] for seq in seqs] for key, seqs in hits.items()}

    def children(self, obj: str, ref_field: FieldDef, parent_ids: Sequence[str]) -> list[tuple[str, bytes]]:
        """``[(id, data)]`` of live ``obj`` records whose ``ref_field`` points at one of ``parent_ids``: one scan
        of the table (a parent's deletion is rare next to the Bulk inserts an index would slow down)."""
        table = self.tables[obj]
        column = ref_column(ref_field.name)
        with self.lock:
            return list(self._chunked_lookup(
                f'SELECT id, data FROM "{table.name}" WHERE {column} IN', list(parent_ids), " AND deleted = 0"
            ))

    def iter_data(self, obj: str, *, include_deleted: bool, batch: int = 5000) -> Iterator[bytes]:
        """The JSON documents of ``obj``'s records in creation order, read in batches (bounded memory)."""
        table = self.tables[obj]
        where = "" if include_deleted else " AND deleted = 0"
        last = 0
        while True:
            with self.lock:
                rows = self.conn.execute(
                    f'SELECT seq, data FROM "{table.name}" WHERE seq > ?{where} ORDER BY seq LIMIT ?', (last, batch)
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for _, data in rows:
                yield data

    def count(self, obj: str, *, include_deleted: bool = False) -> int:
        table = self.tables[obj]
        where = "" if include_deleted else " WHERE deleted = 0"
        with self.lock:
            return self.conn.execute(f'SELECT count(*) FROM "{table.name}"{where}').fetchone()[0]

    # -- writes (inside ``transaction``) ---------------------------------------------------------------

    def take_counter(self, name: str, amount: int, start: int) -> int:
        """Reserve ``amount`` consecutive numbers of counter ``name``; returns the first one."""
        row = self.conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        first = row[0] if row else start
        self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, first + amount),
        )
        return first

    def insert(self, obj: str, rows: Sequence[Sequence[object]]) -> None:
        """New live records, as ``ObjectTable.insert_row`` parameters."""
        journal = self._open_journal()
        table = self.tables[obj]
        self.conn.executemany(table.insert_sql, rows)
        if table.key_indexes:
            seqs = [row[0] for row in rows]
            for position, index in enumerate(table.key_indexes, start=4):
                journal.insert(index, [row[position] for row in rows], seqs)  # type: ignore[misc]

    def update(self, obj: str, rows: Sequence[Sequence[object]], before: Sequence[Sequence[str | None]]) -> None:
        """Rewrite records, as ``update_sql`` parameters; ``before[n]`` holds the match keys row ``n``'s record
        had (``ObjectTable.key_values`` of the stored record)."""
        journal = self._open_journal()
        table = self.tables[obj]
        self.conn.executemany(table.update_sql, rows)
        indexes = table.key_indexes
        if indexes:
            width = len(indexes)
            nothing = (None,) * width
            for row, old in zip(rows, before, strict=True):
                # A deleted record leaves the indexes, which hold live records only.
                journal.change(table.name, indexes, row[-1], old, nothing if row[0] else row[2:2 + width])

    def hard_delete(self, obj: str, record_ids: Sequence[str], before: Sequence[Sequence[str | None]]) -> None:
        """Remove records for good; ``before`` as for ``update``."""
        journal = self._open_journal()
        table = self.tables[obj]
        prefix = table.obj.key_prefix
        seqs = [ids.serial_of(i, prefix) for i in record_ids]
        self.conn.executemany(f'DELETE FROM "{table.name}" WHERE seq = ?', [(seq,) for seq in seqs])
        nothing = (None,) * len(table.key_indexes)
        for seq, old in zip(seqs, before, strict=True):
            journal.change(table.name, table.key_indexes, seq, old, nothing)  # type: ignore[arg-type]

    def reset(self) -> None:
        """Delete every record and counter (the schema stays)."""
        with self.transaction() as conn:
            for table in self.tables.values():
                conn.execute(f'DELETE FROM "{table.name}"')
            conn.execute("DELETE FROM counters")
            self._open_journal().reset = True

    def close(self) -> None:
        with self.lock:
            self.conn.close()
