"""The protobuf wire format, read from byte ranges of a file that is never loaded whole.

An ONNX file is one serialized `ModelProto`; its weights are `bytes` fields (`raw_data`) of
messages nested two levels down. `Cursor` walks such a file forward through `read_at` in
buffered blocks, and lets a caller step over a field's payload without reading it (`skip`):
the walker then reads the few bytes that describe each tensor and none of its data.

Every length is checked against the message that holds it (and so against the file), every
varint against its 10-byte limit, and the bytes read are capped: a hostile file ends in a
`WireError` with a reason, never in a crash, a hang or an allocation the file asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

# Wire types (protobuf encoding): what follows a field's tag.
VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
# Blocks read while parsing forward (the nodes of a graph lie together: few big reads), and
# after a jump over a tensor's data (the next tensor's description is a few hundred bytes: a
# small read, doubled while the parse goes on reading forward).
BLOCK = 64 * 1024
JUMP_BLOCK = 4 * 1024
MAX_BLOCK = 1024 * 1024
MAX_VARINT_BYTES = 10


class WireError(ValueError):
    """The bytes are not a protobuf message the walker accepts; `str` says why."""


ReadRange = Callable[[int, int], bytes]


class Cursor:
    """A forward reader over one file's bytes [0, size), fetched in blocks.

    Bytes handed out by `take` (and varints, tags) go into `digest`; bytes stepped over with
    `skip` are never read. `parsed` counts the bytes fetched.

    Args:
        read: (start, end) -> exactly those bytes of the file.
        size: the file's size.
        max_parsed: the most bytes the walk may fetch (a file whose descriptions alone are
            larger is refused).
        max_fields: the most fields it may read (each costs microseconds of Python).
    """

    def __init__(self, read: ReadRange, size: int, *, max_parsed: int, max_fields: int) -> None:
        self._read = read
        self.size = size
        self.pos = 0
        self.parsed = 0
        self.fields = 0
        self._max = max_parsed
        self._max_fields = max_fields
        self._buf = b""
        self._buf_start = 0
        self._block = BLOCK // 2  # doubled by the first read
        self._hash = hashlib.sha1()
        # bytes [_mark, pos) are taken but not yet hashed: hashed in runs, not byte by byte
        self._mark = 0

    @property
    def digest(self) -> str:
        """sha1 of every byte taken so far: a content id of what was parsed."""
        self._flush()
        return self._hash.hexdigest()

    def _flush(self) -> None:
        if self.pos > self._mark:
            i = self._mark - self._buf_start
            self._hash.update(self._buf[i : i + self.pos - self._mark])
        self._mark = self.pos

    def _fill(self, n: int) -> None:
        """Make bytes [pos, pos + n) available in the buffer."""
        if self.pos + n > self.size:
            raise WireError(f"ends at byte {self.size}, inside a field that needs {n} more bytes")
        end = self._buf_start + len(self._buf)
        if self._buf_start <= self.pos and self.pos + n <= end:
            return
        self._flush()
        contiguous = self._buf_start <= self.pos <= end
        # reading on where the last block ended: a bigger block; after a jump: a small one
        self._block = min(self._block * 2, MAX_BLOCK) if contiguous else JUMP_BLOCK
        keep = self._buf[self.pos - self._buf_start :] if contiguous else b""
        start = self.pos + len(keep)
        stop = min(self.size, max(self.pos + n, start + self._block))
        if self.parsed + (stop - start) > self._max:
            raise WireError(
                f"needs more than {self._max} bytes of descriptions besides its tensor data"
            )
        data = self._read(start, stop)
        if len(data) != stop - start:
            raise WireError(f"gave {len(data)} bytes where {stop - start} were asked at {start}")
        self.parsed += len(data)
        self._buf, self._buf_start = keep + data, self.pos

    def take(self, n: int) -> bytes:
        """The next `n` bytes."""
        self._fill(n)
        i = self.pos - self._buf_start
        self.pos += n
        return self._buf[i : i + n]

    def skip(self, n: int) -> None:
        """Step over `n` bytes without reading them."""
        if n < 0 or self.pos + n > self.size:
            raise WireError(f"a field of {n} bytes at byte {self.pos} runs past the file's end")
        if self._buf_start <= self._mark <= self._buf_start + len(self._buf):
            self._flush()
        self.pos += n
        self._mark = self.pos

    def varint(self) -> int:
        """An unsigned varint (up to 64 bits)."""
        i = self.pos - self._buf_start
        if not 0 <= i < len(self._buf) - MAX_VARINT_BYTES:  # near the buffer's end: refill
            self._fill(min(MAX_VARINT_BYTES, self.size - self.pos) or 1)
            i = self.pos - self._buf_start
        buf = self._buf
        b = buf[i]
        if b < 0x80:  # most tags and lengths are one byte
            self.pos += 1
            return b
        value, last = 0, min(len(buf), i + MAX_VARINT_BYTES)
        for k in range(i, last):
            b = buf[k]
            value |= (b & 0x7F) << (7 * (k - i))
            if b < 0x80:
                self.pos += k - i + 1
                if value >= 1 << 64:
                    raise WireError(f"has a varint over 64 bits at byte {self.pos}")
                return value
        if last - i < MAX_VARINT_BYTES:
            raise WireError(f"ends at byte {self.size}, inside a varint")
        raise WireError(f"has a varint longer than {MAX_VARINT_BYTES} bytes at byte {self.pos}")

    def tag(self) -> tuple[int, int]:
        """(field number, wire type) of the next field."""
        self.fields += 1
        if self.fields > self._max_fields:
            raise WireError(f"has more than {self._max_fields} fields besides its tensor data")
        key = self.varint()
        field, wire = key >> 3, key & 7
        if field == 0 or wire in (SGROUP, EGROUP) or wire > I32:
            raise WireError(f"has an invalid field key {key} at byte {self.pos}")
        return field, wire

    def length(self, end: int) -> int:
        """A length prefix, checked to end within the enclosing message (which ends at `end`)."""
        n = self.varint()
        if self.pos + n > end:
            raise WireError(
                f"has a {n}-byte field at byte {self.pos} that runs past its message's end ({end})"
            )
        return n

    def submessage(self, end: int) -> int:
        """Read a length prefix; the end of the embedded message that follows."""
        n = self.length(end)
        return self.pos + n

    def skip_field(self, wire: int, end: int) -> None:
        """Step over the payload of a field of this wire type."""
        if wire == VARINT:
            self.varint()
        elif wire == I64:
            self.skip(8)
        elif wire == I32:
            self.skip(4)
        else:  # LEN: tag() refuses groups
            self.skip(self.length(end))
        if self.pos > end:
            raise WireError(f"has a field that runs past its message's end ({end})")

    def string(self, end: int, limit: int, what: str) -> str:
        """A length-prefixed UTF-8 string of at most `limit` bytes."""
        n = self.length(end)
        if n > limit:
            raise WireError(f"has a {what} of {n} bytes, over the {limit}-byte limit")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError(f"has a {what} that is not UTF-8 at byte {self.pos - n}") from None


def signed64(value: int) -> int:
    """A varint read as a two's-complement int64 (protobuf int64/int32 fields)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def packed_varints(data: bytes, limit: int) -> list[int]:
    """The unsigned varints of a packed repeated field's payload (at most `limit` of them)."""
    out: list[int] = []
    value = shift = 0
    for b in data:
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            out.append(value)
            if len(out) > limit:
                raise WireError(f"has a packed field of more than {limit} values")
            value = shift = 0
        elif shift >= 7 * MAX_VARINT_BYTES:
            raise WireError("has a varint longer than 10 bytes in a packed field")
    if shift:
        raise WireError("has a packed field that ends inside a varint")
    return out
