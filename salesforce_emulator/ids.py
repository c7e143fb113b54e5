"""Salesforce record Ids: 15-character case-sensitive Ids and their 18-character checksummed form.

An Id is a 3-character key prefix (the object), a 2-character instance code, a reserved ``0`` and a
9-character base-62 serial. The 18-character form appends one character per 5-character chunk whose
bits mark the upper-case letters of that chunk.
"""

from __future__ import annotations

import re
import string

_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
# Salesforce's base-62 order: digits, upper case, lower case.
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ID_PATTERN = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
# What a client means as an Id: 15 or 18 letters and digits, with at least one digit.
ID_SHAPE = re.compile(r"^(?=.*\d)[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
# A fixed pod code makes the Ids look like one real org's.
INSTANCE_CODE = "5g"
SERIAL_WIDTH = 9

_chunk_cache: dict[str, str] = {}


def _chunk_char(chunk: str) -> str:
    cached = _chunk_cache.get(chunk)
    if cached is None:
        bits = 0
        for position, char in enumerate(chunk):
            if "A" <= char <= "Z":
                bits |= 1 << position
        cached = _SUFFIX_ALPHABET[bits]
        if len(_chunk_cache) < 1_000_000:
            _chunk_cache[chunk] = cached
    return cached


def checksum(id15: str) -> str:
    """The 3-character suffix that turns a 15-character Id into its 18-character form."""
    return _chunk_char(id15[0:5]) + _chunk_char(id15[5:10]) + _chunk_char(id15[10:15])


def to_18(id15: str) -> str:
    """The 18-character form of a 15-character Id."""
    return id15 + checksum(id15)


def normalize(value: str) -> str | None:
    """The 18-character Id for a 15- or 18-character Id string, or None if it is malformed.

    An 18-character Id whose suffix does not match its first 15 characters is malformed; the suffix is
    compared case-insensitively (Salesforce accepts either case there).
    """
    if not isinstance(value, str) or not _ID_PATTERN.match(value):
        return None
    if len(value) == 15:
        return to_18(value)
    head = value[:15]
    if value[15:].upper() != checksum(head):
        return None
    return to_18(head)


_TRIPLE = 62**3
_triples: list[str] = []


def serial_to_text(serial: int) -> str:
    """A serial number in Salesforce base 62, zero-padded to the serial width (9 characters)."""
    if not _triples:
        # Every 3-digit base-62 string, so that a serial is three list lookups (Bulk loads make millions).
        _triples.extend(a + b + c for a in _BASE62 for b in _BASE62 for c in _BASE62)
    if not 0 <= serial < _TRIPLE**3:
        raise ValueError("record serial out of range")
    high, low = divmod(serial, _TRIPLE)
    top, middle = divmod(high, _TRIPLE)
    return _triples[top] + _triples[middle] + _triples[low]


def make_id(key_prefix: str, serial: int) -> str:
    """The 18-character Id of record number ``serial`` of the object with ``key_prefix``."""
    return to_18(f"{key_prefix}{INSTANCE_CODE}0{serial_to_text(serial)}")


_upper_bits: list[int] = []


def make_ids(key_prefix: str, first: int, count: int) -> list[str]:
    """The Ids of ``count`` consecutive serials from ``first``; the same as ``make_id``, built for Bulk speed.

    The checksum bits of the fixed head are computed once; those of the serial come from per-triple masks.
    """
    serial_to_text(first)  # fills the triple table and checks the range
    if not _upper_bits:
        _upper_bits.extend(sum(1 << i for i, c in enumerate(t) if "A" <= c <= "Z") for t in _triples)
    head = f"{key_prefix}{INSTANCE_CODE}"
    first_char = _chunk_char(head)
    out: list[str] = []
    triples, bits = _triples, _upper_bits
    serial, stop = first, first + count
    while serial < stop:
        # One run of serials sharing their top and middle triples: only the low triple and the last checksum
        # character change inside it.
        high, low = divmod(serial, _TRIPLE)
        top, middle = divmod(high, _TRIPLE)
        end = min(_TRIPLE, low + stop - serial)
        # Characters 5-9: "0", the top triple, the first character of the middle triple; 10-14: the rest.
        second = (bits[top] << 1) | ((bits[middle] & 1) << 4)
        middle_bits = bits[middle] >> 1
        prefix = f"{head}0{triples[top]}{triples[middle]}"
        checks = f"{first_char}{_SUFFIX_ALPHABET[second]}"
        out.extend([f"{prefix}{triple}{checks}{_SUFFIX_ALPHABET[middle_bits | (low_bits << 2)]}"
                    for triple, low_bits in zip(triples[low:end], bits[low:end])])
        serial += end - low
    return out


_BASE62_VALUE = {c: i for i, c in enumerate(_BASE62)}


def serial_of(record_id: str, key_prefix: str) -> int | None:
    """The serial of an 18-character Id made by ``make_id`` for ``key_prefix``; None for any other Id."""
    if len(record_id) != 18 or not record_id.startswith(key_prefix) or record_id[3:6] != f"{INSTANCE_CODE}0":
        return None
    serial = 0
    for char in record_id[6:15]:
        value = _BASE62_VALUE.get(char)
        if value is None:
            return None
        serial = serial * 62 + value
    return serial
