"""In-memory match-key indexes: for one External ID / unique / idLookup field, match key -> rowids of live records.

The emulator is one process and owns its database, so these maps, loaded with one scan at start-up, replace
SQLite secondary indexes: a Bulk load then appends rows in rowid order (no B-tree insert per key), and upsert
matching, uniqueness checks and parent lookups are dictionary lookups. ``KeyJournal`` holds a transaction's
changes until it commits, so a rolled-back write leaves the maps as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_NO_SEQS: tuple[int, ...] = ()


class KeyIndex:
    """Match key -> rowid (or a list of rowids when several live records share the key, as a non-unique
    idLookup field allows)."""

    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map: dict[str, int | list[int]] = {}

    def __len__(self) -> int:
        return len(self._map)

    def seqs(self, key: str) -> Sequence[int]:
        """The rowids of the live records with this match key (empty when none)."""
        found = self._map.get(key)
        if found is None:
            return _NO_SEQS
        return (found,) if type(found) is int else found

    def add(self, key: str, seq: int) -> None:
        found = self._map.setdefault(key, seq)
        if found is seq:
            return
        if type(found) is int:
            if found != seq:
                self._map[key] = [found, seq]
        elif seq not in found:
            found.append(seq)

    def add_many(self, pairs: Iterable[tuple[str | None, int]]) -> None:
        """``add`` for each (key, seq) whose key is not None; the common case (a new key) is one setdefault."""
        setdefault = self._map.setdefault
        for key, seq in pairs:
            if key is not None and setdefault(key, seq) is not seq:
                self.add(key, seq)

    def remove(self, key: str, seq: int) -> None:
        found = self._map.get(key)
        if found is None:
            return
        if type(found) is int:
            if found == seq:
                del self._map[key]
        elif seq in found:
            found.remove(seq)
            if len(found) == 1:
                self._map[key] = found[0]

    def clear(self) -> None:
        self._map.clear()


@dataclass
class KeyJournal:
    """The key changes of one open transaction, applied to the indexes only after it commits.

    Inserted records are listed as they come (their rowids are new); a changed or deleted record keeps the keys
    it had before the transaction and the last keys written, so a record written twice in one transaction ends
    with its last keys.
    """

    inserted: list[tuple[KeyIndex, list[str | None], list[int]]] = field(default_factory=list)
    changed: dict[tuple[str, int], tuple[list[KeyIndex], Sequence[str | None], Sequence[str | None]]] = field(
        default_factory=dict)
    reset: bool = False

    def insert(self, index: KeyIndex, keys: list[str | None], seqs: list[int]) -> None:
        """New records: ``keys[n]`` is the match key (or None) of record ``seqs[n]`` in ``index``."""
        self.inserted.append((index, keys, seqs))

    def change(self, table: str, indexes: list[KeyIndex], seq: int, before: Sequence[str | None],
               after: Sequence[str | None]) -> None:
        """Record ``seq`` of ``table`` had the match keys ``before`` and now has ``after`` (in ``indexes`` order;
        all None once it is deleted)."""
        if not indexes:
            return
        slot = (table, seq)
        earlier = self.changed.get(slot)
        self.changed[slot] = (indexes, earlier[1] if earlier is not None else before, after)

    def apply(self, all_indexes: Iterable[KeyIndex]) -> None:
        """Bring the indexes up to date with the committed transaction."""
        if self.reset:
            for index in all_indexes:
                index.clear()
        for index, keys, seqs in self.inserted:
            index.add_many(zip(keys, seqs))
        for (_, seq), (indexes, before, after) in self.changed.items():
            for index, old, new in zip(indexes, before, after):
                if old == new:
                    continue
                if old is not None:
                    index.remove(old, seq)
                if new is not None:
                    index.add(new, seq)
