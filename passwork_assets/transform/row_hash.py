"""A stable fingerprint of what a record would write, to send only rows that changed since the last run.

The fingerprint must be equal for equal rows across runs, chunks, processes, machines and library upgrades,
and it must be cheap: it is computed for every extracted row. Polars' `hash_rows` / `Expr.hash` are
explicitly not stable across versions, and SHA-1 in a per-row Python loop cost more than the rest of the
transform, so the fingerprint is defined here, bit for bit, and computed with Polars' vectorised integer
kernels (wrapping UInt64 arithmetic; `x // 2**s` stands for `x >> s`):

- A row is its values' UTF-8 bytes concatenated (null as no bytes), read as little-endian 64-bit words
  `w_0 .. w_{m-1}` (the last one zero-padded), plus the byte length of each value (`length + 1`, 0 for
  null), two to a 64-bit word `L_j`. Together they determine the row exactly: null, empty and where one
  value ends and the next begins all stay apart, whatever characters the values hold.
- Two 64-bit lanes, each with its own well-known bijective finaliser `F` (lane 1: MurmurHash3's fmix64,
  lane 2: Stafford's Mix13 from SplitMix64) and its own position keys `K_k = F(k + lane constant)`:
  `c = F(...F(F(S xor L_0) xor L_1)...)`, `acc = sum over k of F(w_k + K_k) (mod 2^64)`,
  `h = F(acc xor c)`. The seed `S` is the same hash of the column names (with seed 0), so that mapping
  another field changes every fingerprint.
- The text is `<lane 1>-<lane 2>` in decimal (128 bits).

Why this serves as a change detector: `F` is a bijection with full avalanche, so one differing word always
changes the sum, and several differing words cancel only by chance (about 2^-64 per lane); the position
keys make order matter, and there is no polynomial (which over 2^64 collides on Thue-Morse strings). The
two lanes use different finalisers and unrelated keys. It is not a cryptographic hash; a change detector
over one's own data does not need one.

Changing this definition changes every stored fingerprint, and every row is sent once more on the next
run. (Releases before this one stored SHA-1 fingerprints, so the first run after upgrading from them sends
every row once.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import polars as pl

_MASK = (1 << 64) - 1
# Data words per slice of rows: intermediate arrays of 2 MB, whatever the chunk size.
_WORDS_PER_SLICE = 1 << 18


def _scalar_finaliser(s1: int, m1: int, s2: int, m2: int, s3: int) -> Callable[[int], int]:
    def finalise(x: int) -> int:
        x ^= x >> s1
        x = (x * m1) & _MASK
        x ^= x >> s2
        x = (x * m2) & _MASK
        return x ^ (x >> s3)
    return finalise


# Each lane: the finaliser's (shift, multiplier, shift, multiplier, shift), and the constant of its keys.
_LANES: tuple[tuple[tuple[int, int, int, int, int], int], ...] = (
    ((33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33), 0x9E3779B97F4A7C15),  # fmix64
    ((30, 0xBF58476D1CE4E5B9, 27, 0x94D049BB133111EB, 31), 0xD6E8FEB86659FD93),  # Mix13
)
_SCALAR = [_scalar_finaliser(*params) for params, _ in _LANES]


def _finalise(x: pl.Expr, lane: int) -> list[pl.Expr]:
    """The lane's finaliser as successive steps over a UInt64 column (`x // 2**s` is `x >> s`).

    Steps rather than one nested expression: each step reads its input twice, and a nested expression
    would compute its input once per reference.
    """
    s1, m1, s2, m2, s3 = _LANES[lane][0]
    return [(x ^ (x // (1 << s1))) * m1, (x ^ (x // (1 << s2))) * m2, x ^ (x // (1 << s3))]


def _finalised(frame: pl.LazyFrame, columns: list[str]) -> pl.LazyFrame:
    """Column `columns[lane]` replaced by its lane's finaliser, lanes side by side (Polars runs them in parallel)."""
    for step in range(3):
        frame = frame.with_columns(
            [_finalise(pl.col(name), lane)[step].alias(name) for lane, name in enumerate(columns)])
    return frame


def _keys(lane: int, count: int) -> list[int]:
    constant = _LANES[lane][1]
    return [_SCALAR[lane]((k + constant) & _MASK) for k in range(count)]


def _width(words: int) -> int:
    """The padded width a row of `words` words is hashed in: few widths, and little padding."""
    if words <= 64:
        return max(4, -(-words // 4) * 4)
    return 1 << (words - 1).bit_length()


def _word_sums(padded: pl.Series, words: pl.Series, width: int) -> list[pl.Series]:
    """Per row, each lane's `sum of F(w_k + K_k)` over the row's words; `padded` holds each row's bytes
    zero-padded to exactly `width` words, so that one reinterpretation gives every word at once.

    A padding word is 0, so it adds `F(K_k)` at its position; those known amounts are taken off again, so
    the sum of a row does not depend on the width it happened to be computed in.
    """
    words_array = padded.cast(pl.Binary).bin.reinterpret(dtype=pl.Array(pl.UInt64, width), endianness="little")
    lanes = [str(lane) for lane in range(len(_LANES))]
    keys = [_keys(lane, width) for lane in range(len(_LANES))]
    keyed = pl.LazyFrame({"w": words_array}).select(
        [(pl.col("w") + pl.lit(pl.Series([keys[lane]], dtype=pl.Array(pl.UInt64, width)))).reshape((-1,)).alias(name)
         for lane, name in enumerate(lanes)])
    totals = _finalised(keyed, lanes).select([pl.col(name).reshape((-1, width)).arr.sum() for name in lanes]).collect()
    sums = []
    for lane, name in enumerate(lanes):
        # padding[k] = what zero words at positions k..width-1 add; subtracting is adding its negation.
        padding = [0] * (width + 1)
        for k in range(width - 1, -1, -1):
            padding[k] = (padding[k + 1] + _SCALAR[lane](keys[lane][k])) & _MASK
        correction = pl.Series([(-p) & _MASK for p in padding], dtype=pl.UInt64).gather(words)
        sums.append(totals.get_column(name) + correction)
    return sums


def _data_sums(frame: pl.DataFrame) -> list[pl.Series]:
    """Both lanes' word sums of each row's concatenated bytes.

    One width for all rows when padding to the widest costs at most half again the real words (the usual
    case: rows of similar size); otherwise rows are grouped by width, so that one long value does not pad
    every other row to its length. The padding is appended in the same pass that concatenates the values.
    Rows go in slices of at most `_WORDS_PER_SLICE` words, which bounds the memory of the intermediate
    arrays (and keeps them small enough for the CPU's caches).
    """
    size = frame.select(pl.sum_horizontal([pl.col(c).str.len_bytes().cast(pl.UInt64).fill_null(0)
                                           for c in frame.columns])).to_series()
    words = (size + 7) // 8
    widest = _width(int(words.max() or 0))
    single = len(words) * widest <= 1.5 * int(words.sum()) + 4 * len(words)
    widths = {w: widest if single else _width(w) for w in words.unique().to_list()}
    row_widths = words.replace_strict(widths, return_dtype=pl.UInt64)
    row_width = pl.lit(widest, dtype=pl.UInt64) if single else pl.lit(row_widths)
    padding = pl.lit("\x00" * (8 * max(widths.values(), default=widest))).str.slice(0, row_width * 8 - pl.lit(size))
    padded = frame.select(pl.concat_str([*[pl.col(c).fill_null("") for c in frame.columns], padding])).to_series()
    if single:
        step = max(1, _WORDS_PER_SLICE // widest)
        parts = [_word_sums(padded.slice(start, step), words.slice(start, step), widest)
                 for start in range(0, len(padded), step)] or [_word_sums(padded, words, widest)]
        return [pl.concat([part[lane] for part in parts]) for lane in range(len(_LANES))]
    sums = [pl.zeros(len(words), dtype=pl.UInt64, eager=True) for _ in _LANES]
    every_row = pl.int_range(0, len(words), dtype=pl.UInt32, eager=True)
    for width in sorted(set(widths.values())):
        rows = every_row.filter(row_widths == width)
        step = max(1, _WORDS_PER_SLICE // width)
        for start in range(0, len(rows), step):
            part = rows.slice(start, step)
            for lane, got in enumerate(_word_sums(padded.gather(part), words.gather(part), width)):
                sums[lane] = sums[lane].scatter(part, got)
    return sums


def _lanes(frame: pl.DataFrame, seeds: tuple[int, int]) -> list[pl.Series]:
    """Both 64-bit lanes of the fingerprint of each row of `frame` (Utf8 columns), as UInt64 Series."""
    lengths = [(pl.col(c).str.len_bytes().cast(pl.UInt64) + 1).fill_null(0) for c in frame.columns]
    if len(lengths) % 2:
        lengths.append(pl.lit(0, dtype=pl.UInt64))
    packed = frame.select([(lengths[j] + lengths[j + 1] * (1 << 32)).alias(f"L{j // 2}")
                           for j in range(0, len(lengths), 2)])
    lanes = [str(lane) for lane in range(len(_LANES))]
    chain = packed.lazy().with_columns([pl.lit(seed, dtype=pl.UInt64).alias(name) for seed, name in zip(seeds, lanes)])
    for word in packed.columns:
        chain = _finalised(chain.with_columns([pl.col(name) ^ pl.col(word) for name in lanes]), lanes)
    sums = _data_sums(frame)
    final = chain.select(lanes).with_columns([pl.col(name) ^ pl.lit(total) for name, total in zip(lanes, sums)])
    finished = _finalised(final, lanes).collect()
    return [finished.get_column(name) for name in lanes]


@functools.lru_cache(maxsize=64)
def _header_seeds(columns: tuple[str, ...]) -> tuple[int, int]:
    """The seeds `S`: the column names hashed as a row (seed 0); cached, every chunk of a flow has the same."""
    names = pl.DataFrame([pl.Series(str(i), [c], dtype=pl.Utf8) for i, c in enumerate(columns)])
    first, second = _lanes(names, (0, 0))
    return first[0], second[0]


def fingerprints(frame: pl.DataFrame) -> pl.Series:
    """The fingerprint (see the module docstring) of each row of `frame`, whose columns are all Utf8."""
    if frame.height == 0:
        return pl.Series([], dtype=pl.Utf8)
    first, second = _lanes(frame, _header_seeds(tuple(frame.columns)))
    return pl.DataFrame({"1": first, "2": second}).select(
        pl.concat_str([pl.col("1").cast(pl.Utf8), pl.col("2").cast(pl.Utf8)], separator="-")).to_series()


def row_hash(columns: list[str]) -> pl.Expr:
    """An expression giving the fingerprint of `columns` (all Utf8, nulls allowed) of each row."""
    return pl.struct(columns).map_batches(lambda rows: fingerprints(rows.struct.unnest()), return_dtype=pl.Utf8)
