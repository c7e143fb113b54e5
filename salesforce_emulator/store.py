"""SQLite storage of the org's records: one table per object, laid out for fast Bulk upserts.

Each record is one row: its field values (a dict encoded with ``marshal``, several times faster to write and
read than JSON, which matters at a million rows per Bulk job), plus indexed columns holding the match key
of every External ID / unique field (``k_<Field>``) and the target Id of every reference field
(``r_<Field>``), so upsert matching, parent lookups and cascades are index lookups, never scans.
The file lives in the data folder, so a restarted emulator serves the same org.
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
        columns = ", ".join(["seq", "id", "deleted", "data", *self.extra_columns])
        marks = ", ".join("?" * (4 + len(self.extra_columns)))
        self.insert_sql = f'INSERT INTO "{self.name}" ({columns}) VALUES ({marks})'
        sets = ", ".join(f"{c} = ?" for c in ["deleted", "data", *self.extra_columns])
        self.update_sql = f'UPDATE "{self.name}" SET {sets} WHERE seq = ?'

        self.row_values = self._compile_row_values()
        self.insert_row = self._compile_insert_row()

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
        self._create(schema)

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
        self.conn.execute(f'CREATE INDEX IF NOT EXISTS "ix_{table.name}_{column}" ON "{table.name}" ({column})')

    def table(self, obj: str) -> ObjectTable:
        return self.tables[obj]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back if the block raises."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

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
        """``{key: [(id, data), ...]}`` of live (not deleted) records whose ``f`` match key is in ``keys``."""
        table = self.tables[obj]
        column = key_column(f.name)
        wanted = list(dict.fromkeys(keys))
        found: dict[str, list[tuple[str, bytes | None]]] = {}
        data_col = "data" if with_data else "NULL"
        with self.lock:
            for key, rid, data in self._chunked_lookup(
                f'SELECT {column}, id, {data_col} FROM "{table.name}" WHERE {column} IN', wanted, " AND deleted = 0"
            ):
                found.setdefault(key, []).append((rid, data))
        return found

    def children(self, obj: str, ref_field: FieldDef, parent_ids: Sequence[str]) -> list[tuple[str, bytes]]:
        """``[(id, data)]`` of live ``obj`` records whose ``ref_field`` points at one of ``parent_ids``."""
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
        self.conn.executemany(self.tables[obj].insert_sql, rows)

    def update(self, obj: str, rows: Sequence[Sequence[object]]) -> None:
        self.conn.executemany(self.tables[obj].update_sql, rows)

    def hard_delete(self, obj: str, record_ids: Sequence[str]) -> None:
        table = self.tables[obj]
        prefix = table.obj.key_prefix
        self.conn.executemany(f'DELETE FROM "{table.name}" WHERE seq = ?', [(ids.serial_of(i, prefix),) for i in record_ids])

    def reset(self) -> None:
        """Delete every record and counter (the schema stays)."""
        with self.transaction() as conn:
            for table in self.tables.values():
                conn.execute(f'DELETE FROM "{table.name}"')
            conn.execute("DELETE FROM counters")

    def close(self) -> None:
        with self.lock:
            self.conn.close()
