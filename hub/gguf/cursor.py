"""Bounded sequential reads over the front of a file, and GGUF metadata values.

`Cursor` fetches the file's first bytes in growing ranges (64 KiB first, then doubling up to
steps of 2 MiB), so a header of several megabytes costs a few requests and reads at most 2 MiB
past its end, and a hostile one is cut at `MAX_HEADER_BYTES`.
`read_value` reads one metadata value; vocabularies and other long arrays are walked past and
kept as `Skipped`, so memory stays bounded by the header cap, whatever the counts say.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

FIRST_READ = 64 * 1024
GROW_MAX = 2 * 2**20
# Tokenizer vocabularies and merges take several MB; real headers stay far below this.
MAX_HEADER_BYTES = 64 * 2**20
MAXSTRING_BYTES = 16 * 2**20  # a chat template or a precompiled charsmap at most
MAXARRAY = 1 << 22  # vocabularies and merges: a few hundred thousand entries
MAX_DEPTH = 4  # arrays of arrays
KEEPARRAY = 4096  # longer arrays are walked past, not kept (only their type and length are)
KEEPSTRING = 4096

# metadata value type -> struct code (8 string and 9 array are read apart)
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
           12: "d"}  # fmt: skip
STRING, ARRAY = 8, 9

ReadAt = Callable[[str, int, int], bytes]
# problem -> the exception to raise (names the file and the remedy)
Fail = Callable[[str], Exception]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A metadata value too long to keep (a vocabulary): its element type and length."""

    type: int
    length: int


class Cursor:
    """Sequential reads over the front of a file, fetched in growing ranges, capped."""

    def __init__(self, read_at: ReadAt, rel: str, size: int | None, fail: Fail) -> None:
        self._read_at, self._rel, self._size, self._fail = read_at, rel, size, fail
        self.buf = bytearray()
        self.pos = 0

    def need(self, n: int) -> None:
        end = self.pos + n
        if end > MAX_HEADER_BYTES:
            raise self._fail(f"its header runs past {MAX_HEADER_BYTES} bytes")
        if self._size is not None and end > self._size:
            raise self._fail(f"the file ends ({self._size} bytes) inside its header")
        if end <= len(self.buf):
            return
        # grow geometrically up to steps of GROW_MAX: an 8 MB header costs about ten requests,
        # not thousands, and at most GROW_MAX bytes are read past its end
        want = max(FIRST_READ, end + min(len(self.buf), GROW_MAX))
        want = min(want, MAX_HEADER_BYTES)
        # an unknown size: never ask for bytes that may not exist
        want = min(want, self._size) if self._size is not None else end
        chunk = self._read_at(self._rel, len(self.buf), want)
        if len(chunk) != want - len(self.buf):
            raise self._fail("the file ends inside its header")
        self.buf += chunk

    def unpack(self, code: str) -> object:
        size = struct.calcsize("<" + code)
        self.need(size)
        (value,) = struct.unpack_from("<" + code, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self) -> int:
        return int(self.unpack("I"))  # type: ignore[call-overload]

    def u64(self) -> int:
        return int(self.unpack("Q"))  # type: ignore[call-overload]

    def raw(self, n: int) -> bytes:
        self.need(n)
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        self.need(n)
        self.pos += n


def read_text(cur: Cursor, limit: int, what: str, fail: Fail) -> str:
    n = cur.u64()
    if n > limit:
        raise fail(f"{what} is {n} bytes long, over the limit of {limit}")
    try:
        return cur.raw(n).decode("utf-8")
    except UnicodeDecodeError:
        raise fail(f"{what} is not UTF-8") from None


def _string_length(cur: Cursor, fail: Fail) -> int:
    n = cur.u64()
    if n > MAXSTRING_BYTES:
        raise fail(f"a metadata string is {n} bytes long, over the limit of {MAXSTRING_BYTES}")
    return n


def read_value(cur: Cursor, vtype: int, depth: int, fail: Fail) -> object:
    """One metadata value; long strings and arrays are read past and kept as `Skipped`."""
    if vtype in SCALARS:
        return cur.unpack(SCALARS[vtype])
    if vtype == STRING:
        n = _string_length(cur, fail)
        if n > KEEPSTRING:
            cur.skip(n)
            return Skipped(STRING, n)
        return cur.raw(n).decode("utf-8", errors="replace")
    if vtype == ARRAY:
        if depth >= MAX_DEPTH:
            raise fail(f"its metadata nests arrays deeper than {MAX_DEPTH}")
        etype, count = cur.u32(), cur.u64()
        if count > MAXARRAY:
            raise fail(f"a metadata array holds {count} values, over the limit of {MAXARRAY}")
        if etype in SCALARS and count > KEEPARRAY:
            # fixed-size elements: one skip, however long (still bounded by the header cap)
            cur.skip(count * struct.calcsize("<" + SCALARS[etype]))
            return Skipped(etype, count)
        if etype not in SCALARS and etype not in (STRING, ARRAY):
            raise fail(f"a metadata array has the unknown element type {etype}")
        if count > KEEPARRAY:  # a vocabulary: walk past it without keeping a value
            for _ in range(count):
                if etype == STRING:
                    cur.skip(_string_length(cur, fail))
                else:
                    read_value(cur, etype, depth + 1, fail)
            return Skipped(etype, count)
        return tuple(read_value(cur, etype, depth + 1, fail) for _ in range(count))
    raise fail(f"a metadata value has the unknown type {vtype}")
