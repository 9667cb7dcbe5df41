"""Trace lines -> columnar parts: bulk msgspec decoding, strict checks, error messages.

Blocks are read as raw text of whole lines and never split on the fast path: every
newline becomes a comma and the block is decoded as one JSON array in one msgspec
call (a blank, comment or broken line makes that fail; a count of lines against
records catches a line holding two); columns are built with C-level iteration.
Only when that fails is the block split into lines: without blank and comment lines
it is tried in bulk again, else decoded line by line to name the bad line. Every
event carries a sequence key (file index, line number) so that sorting by
(emission, seq) keeps ties in file order, then line order.
"""

from __future__ import annotations

import difflib
import gzip
import operator
import re
import typing
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec
import numpy as np

from .batch import Batch
from .errors import TraceError
from .model import CATALOG, StreamSpec
from .units import Kind

__all__ = [
    "START",
    "Decoded",
    "Part",
    "Pos",
    "decode_block",
    "line_count",
    "open_trace",
    "read_blocks",
    "scan_emit",
    "seq_line",
]


def _decode_type(spec: StreamSpec) -> type:
    """The stream's record for decoding: its fields, types, defaults and tag, but
    never tracked by the garbage collector (it holds only ints and strings; a block
    makes tens of thousands, and tracked ones set off collections that cost about a
    quarter of the decode time)."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(spec.record):
        assert f.default_factory is msgspec.NODEFAULT, "no factory defaults in the catalog"
        fields.append((f.name, f.type) if f.required else (f.name, f.type, f.default))
    return msgspec.defstruct(
        spec.record.__name__, fields, kw_only=True, tag=spec.name, tag_field="stream", gc=False
    )


_RECORDS = tuple(_decode_type(spec) for spec in CATALOG.values())
_ANY: Any = typing.Union[_RECORDS]  # noqa: UP007
_BULK: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(list[_ANY])
_ONE: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_ANY)
_STREAM_OF: dict[type, str] = dict(zip(_RECORDS, CATALOG, strict=True))
_TYPE_ID: dict[type, int] = {cls: i for i, cls in enumerate(_RECORDS)}

LINE_BITS = 40  # seq = file_index << LINE_BITS | line_number
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_FLOAT_LIMIT = 2.0**63  # a numeric column at or past this (as float) may not fit int64
_NUMERIC: dict[type, tuple[str, ...]] = {
    cls: tuple(spec.numeric_fields()) for cls, spec in zip(_RECORDS, CATALOG.values(), strict=True)
}
# What a malformed line can make msgspec (or the checks after it) raise besides
# DecodeError: invalid UTF-8 inside a string (UnicodeDecodeError, a ValueError),
# nesting deeper than the interpreter's recursion limit, integers past int64.
_MALFORMED = (msgspec.DecodeError, ValueError, RecursionError, OverflowError)
_GET_TS = attrgetter("ts")
_GET_END = attrgetter("end")

OnBad = Callable[[TraceError], None]


def seq_line(seq: int) -> int:
    """The line number a sequence key came from."""
    return int(seq) & ((1 << LINE_BITS) - 1)


def open_trace(path: str) -> typing.BinaryIO:
    """A binary reader of the trace's text; gzip is detected by its magic bytes."""
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller
    magic = f.read(2)
    f.seek(0)
    if magic == b"\x1f\x8b":
        return typing.cast(typing.BinaryIO, gzip.GzipFile(fileobj=f, mode="rb"))
    return f


def _emit_type(spec: StreamSpec) -> type:
    """For the time-only pass: a record holding just the stream's emission time
    (`end` of an interval, `ts` of a point), read as `emit`."""
    src = "end" if spec.interval else "ts"
    return msgspec.defstruct(
        f"{spec.record.__name__}Emit",
        [("emit", int, msgspec.field(name=src))],
        tag=spec.name,
        tag_field="stream",
        gc=False,
    )


class _LooseKey(msgspec.Struct):
    """For the slow path: a point stream may carry a stray `end` of any type."""

    ts: int
    stream: str
    end: Any = None


_EMITS: Any = typing.Union[tuple(_emit_type(spec) for spec in CATALOG.values())]  # noqa: UP007
_KEYS: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(list[_EMITS])
_GET_EMIT = attrgetter("emit")
_LOOSE: msgspec.json.Decoder[_LooseKey] = msgspec.json.Decoder(_LooseKey)
_INTERVAL = frozenset(name for name, spec in CATALOG.items() if spec.interval)


def line_count(text: bytes) -> int:
    """How many lines a block holds (the last one may lack its newline)."""
    if not text:
        return 0
    return int(np.count_nonzero(np.frombuffer(text, np.uint8) == 10)) + (text[-1] != 10)


def _as_array(text: bytes) -> bytearray:
    """A block of lines as one JSON array: each newline becomes a comma."""
    out = bytearray(b"[")
    out += text.replace(b"\n", b",")
    if out[-1] == 44:  # the block's last newline
        out[-1] = 93
    else:
        out.append(93)
    return out


def _split_lines(text: bytes) -> list[bytes]:
    lines = text.split(b"\n")
    if text.endswith(b"\n"):
        lines.pop()
    return lines


def scan_emit(text: bytes, first: int, lines: int | None = None) -> np.ndarray:
    """Emission times of a block's lines, reading only stream and `end` or `ts`
    (the cheap first pass that decides whether a file is in order). Lines the full
    decode will reject are left out or counted (which costs a spill at most); it
    reports them. `lines`: the block's line count, if known."""
    if not text:
        return np.empty(0, dtype=np.int64)
    try:
        keys = _KEYS.decode(_as_array(text))
        if len(keys) != (line_count(text) if lines is None else lines):
            raise ValueError("not one record per line")
    except _MALFORMED:
        kept, _ = _keep(_split_lines(text), first)
        try:
            keys = _KEYS.decode(b"[" + b",".join(kept) + b"]")
            if len(keys) != len(kept):
                raise ValueError("not one record per line") from None
        except _MALFORMED:
            return _scan_slow(kept)
    try:
        return np.fromiter(map(_GET_EMIT, keys), np.int64, len(keys))
    except OverflowError:
        return _scan_slow(_keep(_split_lines(text), first)[0])


def _scan_slow(kept: list[bytes]) -> np.ndarray:
    out: list[int] = []
    for ln in kept:
        try:
            k = _LOOSE.decode(ln)
        except _MALFORMED:
            continue
        if k.stream in _INTERVAL:
            if not isinstance(k.end, int) or isinstance(k.end, bool) or k.end < k.ts:
                continue
            t = k.end
        else:
            t = k.ts
        if -_INT64_MAX <= k.ts <= _INT64_MAX and -_INT64_MAX <= t <= _INT64_MAX:
            out.append(t)
    return np.asarray(out, dtype=np.int64)


def _read(f: typing.BinaryIO, n: int, path: str, line_no: int) -> bytes:
    try:
        return f.read(n)
    except gzip.BadGzipFile as e:
        raise TraceError(f"not a valid gzip file: {e}", path, line_no) from None
    except (OSError, EOFError, zlib.error) as e:
        raise TraceError(f"cannot read trace: {e}", path, line_no) from None


class Pos(NamedTuple):
    """A place in a trace's text: byte offset (into the decompressed text) and the
    number of the line that starts there."""

    offset: int
    line: int


START = Pos(0, 1)


def _seek(f: typing.BinaryIO, offset: int, path: str, line_no: int) -> None:
    try:
        f.seek(offset)
    except gzip.BadGzipFile as e:
        raise TraceError(f"not a valid gzip file: {e}", path, line_no) from None
    except (OSError, EOFError, zlib.error) as e:
        raise TraceError(f"cannot read trace: {e}", path, line_no) from None


def read_blocks(
    path: str, block_bytes: int = 1 << 19, start: Pos = START
) -> Iterator[tuple[int, bytes, Pos]]:
    """(first line number, text of whole lines, where the next block starts) in
    blocks of about `block_bytes`, from `start` on (a Pos this yielded: reading
    resumes there without going over earlier lines, gzip only inflating them)."""
    try:
        f = open_trace(path)
    except OSError as e:
        raise TraceError(f"cannot read trace: {e.strerror or e}", path, 0) from None
    offset, line_no = start
    pending: list[bytes] = []  # the start of a line longer than what was read so far
    with f:
        if offset:
            _seek(f, offset, path, line_no)
        elif _read(f, 3, path, 1) == b"\xef\xbb\xbf":  # a UTF-8 byte-order mark is no data
            offset = 3
        else:
            f.seek(0)
        while data := _read(f, block_bytes, path, line_no):
            cut = data.rfind(b"\n") + 1
            if not cut:
                pending.append(data)
                continue
            text = b"".join((*pending, memoryview(data)[:cut])) if pending else data[:cut]
            pending = [data[cut:]] if cut < len(data) else []
            nxt = Pos(offset + len(text), line_no + line_count(text))
            yield line_no, text, nxt
            offset, line_no = nxt
        if pending:
            text = b"".join(pending)
            yield line_no, text, Pos(offset + len(text), line_no + 1)


@dataclass(slots=True)
class Part:
    """Events of one stream from one block, in line order (columns may be omitted)."""

    batch: Batch
    seq: np.ndarray  # int64


@dataclass(slots=True)
class Decoded:
    parts: dict[str, Part]
    line_emit: np.ndarray  # emission times of every good event, in line order
    count: int  # good events
    bad: int  # bad lines


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number with a fraction",
    "str": "a string",
    "object": "an object",
    "array": "an array",
    "null": "null",
    "bool": "true/false",
}
_EXPECTED = re.compile(r"Expected `(\w+)`(?:, got `(\w+)`)?( >= 0)?(?: - at `\$\.?(.*)`)?")


def _bad_utf8(line: bytes) -> str | None:
    """Where a line is not UTF-8 (JSON text must be), said for people; None if it is."""
    if line.isascii():
        return None
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not valid JSON (invalid UTF-8 byte 0x{line[e.start]:02x} at column {e.start + 1})"
    return None


def _message(err: Exception) -> str:
    """msgspec's error, said for people who write traces."""
    if isinstance(err, RecursionError):
        return "JSON nested too deeply"
    text = str(err)
    if isinstance(err, msgspec.DecodeError) and not isinstance(err, msgspec.ValidationError):
        return f"not valid JSON ({text.removeprefix('JSON is malformed: ')})"
    if not isinstance(err, msgspec.DecodeError):  # OverflowError, ValueError
        return f"cannot decode the line ({text})"
    m = re.match(r"Number out of range - at `\$\.(.*)`", text)
    if m:
        return f"field `{m.group(1)}` is out of range"
    m = re.match(r"Object missing required field `(\w+)`", text)
    if m:
        return f"missing required field `{m.group(1)}`"
    m = re.match(r"Invalid value '(.*)' - at `\$\.stream`", text)
    if m:
        name = m.group(1)
        close = difflib.get_close_matches(name, list(CATALOG), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown stream '{name}'{hint}"
    m = _EXPECTED.match(text)
    if m:
        want, got, nonneg, where = m.groups()
        field = f"field `{where}`" if where else "the line"
        if want == "object" and not where:
            return f"expected a JSON object, got {_TYPE_WORDS.get(got or '', got)}"
        want_w = _TYPE_WORDS.get(want, want)
        if nonneg:
            return f"{field} must be a non-negative integer"
        if got:
            return f"{field}: expected {want_w}, got {_TYPE_WORDS.get(got, got)}"
        return f"{field}: expected {want_w}"
    return text


def _check_one(obj: Any) -> str | None:
    """Checks msgspec cannot express: int64 range of times and numbers, end >= ts."""
    end = getattr(obj, "end", None)
    for name, v in (("ts", obj.ts), ("end", end)):
        if v is not None and not -_INT64_MAX <= v <= _INT64_MAX:
            return f"field `{name}` is out of range for a 64-bit time in ns"
    if end is not None and end < obj.ts:
        return f"`end` ({end}) is before `ts` ({obj.ts})"
    for name in _NUMERIC[type(obj)]:
        v = getattr(obj, name)
        if v is not None and not _INT64_MIN <= v <= _INT64_MAX:
            return f"field `{name}` is out of range for a 64-bit integer"
    return None


def _keep(lines: list[bytes], first: int) -> tuple[list[bytes], list[int] | None]:
    """Drop blank and `#` lines; line numbers only when something was dropped."""
    kept = [ln for ln in lines if ln[:1] == b"{"]
    if len(kept) == len(lines):
        return kept, None
    kept, nums = [], []
    for i, ln in enumerate(lines):
        s = ln.strip()
        if s and s[:1] != b"#":
            kept.append(ln)
            nums.append(first + i)
    return kept, nums


def _slow(
    path: str, kept: list[bytes], nums: list[int], on_bad: OnBad | None
) -> tuple[list[Any], list[int], int]:
    """Decode line by line: report each bad line, return the good ones."""
    objs: list[Any] = []
    good: list[int] = []
    bad = 0
    for ln, no in zip(kept, nums, strict=True):
        problem = _bad_utf8(ln)
        if problem is None:
            try:
                obj = _ONE.decode(ln)
                problem = _check_one(obj)
            except _MALFORMED as e:
                problem = _message(e)
        if problem is None:
            objs.append(obj)
            good.append(no)
            continue
        bad += 1
        if on_bad is not None:
            on_bad(TraceError(problem, path, no))
    return objs, good, bad


def _numbers(objs: Sequence[Any], name: str, n: int) -> np.ndarray | None:
    """A numeric field's float64 column (NaN where absent); None if a value is past
    int64. Through int64 when no value is absent: exact and the fastest."""
    get = attrgetter(name)
    try:
        return np.fromiter(map(get, objs), np.int64, n).astype(np.float64)
    except OverflowError:
        return None
    except TypeError:  # None: an optional field is absent somewhere
        pass
    try:
        col = np.array(list(map(get, objs)), dtype=np.float64)  # None -> NaN
    except OverflowError:  # past what a float holds
        return None
    # At or past 2**63 as a float may still be just below it as an integer.
    if bool(np.any(np.abs(col) >= _FLOAT_LIMIT)) and not _int64(objs, name):
        return None
    return col


def _int64(objs: Sequence[Any], name: str) -> bool:
    """Every value of a numeric field fits int64: the exact check for streams whose
    columns are not built (falsy values, None for absent among them, are skipped)."""
    try:
        np.fromiter(filter(None, map(attrgetter(name), objs)), np.int64)
    except OverflowError:
        return False
    return True


def _group(objs: list[Any]) -> list[tuple[str, Sequence[Any], np.ndarray | None]]:
    """Split decoded records by stream (C-level passes only); positions None when
    the block has one stream."""
    n = len(objs)
    tid = np.fromiter(map(_TYPE_ID.__getitem__, map(type, objs)), np.int8, n)
    counts = np.bincount(tid, minlength=len(_TYPE_ID)).tolist()
    if max(counts) == n:
        return [(_STREAM_OF[type(objs[0])], objs, None)]
    order = np.argsort(tid, kind="stable")
    grouped = operator.itemgetter(*order.tolist())(objs)
    out: list[tuple[str, Sequence[Any], np.ndarray | None]] = []
    at = 0
    for k, c in enumerate(counts):
        if c:
            out.append((_STREAM_OF[_RECORDS[k]], grouped[at : at + c], order[at : at + c]))
            at += c
    return out


def _build(
    objs: list[Any], seq_all: np.ndarray, columns: frozenset[str] | None, *, checked: bool = False
) -> tuple[dict[str, Part], np.ndarray] | None:
    """Columns per stream and emission times in line order; None if a check fails
    (`checked`: every record passed `_check_one` already, which is exact)."""
    n = len(objs)
    line_emit = np.empty(n, dtype=np.int64)
    parts: dict[str, Part] = {}
    for stream, sub, idx in _group(objs) if n else []:
        m = len(sub)
        spec = CATALOG[stream]
        try:
            ts = np.fromiter(map(_GET_TS, sub), np.int64, m)
            end = np.fromiter(map(_GET_END, sub), np.int64, m) if spec.interval else None
        except OverflowError:
            return None
        if not checked and (
            bool(np.any(ts == _INT64_MIN))
            or (end is not None and bool(np.any((end < ts) | (end == _INT64_MIN))))
        ):
            return None
        emit = ts if end is None else end
        if idx is None:
            line_emit[:] = emit
        else:
            line_emit[idx] = emit
        cols: dict[str, np.ndarray] = {}
        if columns is None or stream in columns:
            for f in spec.fields.values():
                if f.kind is Kind.STRING:
                    cols[f.name] = np.fromiter(map(attrgetter(f.name), sub), object, m)
                    continue
                col = _numbers(sub, f.name, m)
                if col is None:
                    return None
                cols[f.name] = col
        elif not checked and not all(_int64(sub, name) for name in spec.numeric_fields()):
            return None
        seq = seq_all if idx is None else seq_all[idx]
        parts[stream] = Part(Batch(stream, ts, end, cols), seq)
    return parts, line_emit


def _bulk(text: bytes | bytearray, lines: int) -> list[Any] | None:
    """The records of a block decoded in one call; None if a line is bad or a line
    does not hold exactly one record."""
    try:
        objs = _BULK.decode(text)
    except _MALFORMED:
        return None
    return objs if len(objs) == lines else None


def decode_block(
    path: str,
    file_index: int,
    first: int,
    text: bytes,
    *,
    on_bad: OnBad | None,
    columns: frozenset[str] | None,
    lines: int | None = None,
) -> Decoded:
    """Decode one block of whole lines (as `read_blocks` gives) numbered from `first`.

    `on_bad` None: bad lines are dropped silently (they were reported already);
    `columns`: the streams whose fields to build (the others get ts/end only);
    `lines`: the block's line count, if known.
    """
    base = file_index << LINE_BITS
    utf8 = True
    if not text.isascii():  # JSON text is UTF-8, in fields msgspec skips too
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            utf8 = False
    if lines is None:
        lines = line_count(text)
    objs = _bulk(_as_array(text), lines) if utf8 and text else None
    if objs is not None:
        seq_all = np.arange(first, first + len(objs), dtype=np.int64) | base
        built = _build(objs, seq_all, columns)
        if built is not None:
            return Decoded(built[0], built[1], len(objs), 0)
    retry = objs is None and utf8  # not decoded (rather than a check failing)
    del objs
    kept, nums = _keep(_split_lines(text), first)
    if not kept:
        return Decoded({}, np.empty(0, dtype=np.int64), 0, 0)
    if retry and nums is not None:
        # Blank or comment lines made the first try fail: try the rest in bulk.
        objs = _bulk(b"[" + b",".join(kept) + b"]", len(kept))
        if objs is not None:
            built = _build(objs, np.asarray(nums, dtype=np.int64) | base, columns)
            if built is not None:
                return Decoded(built[0], built[1], len(objs), 0)
    # Something in the block is bad: find it line by line.
    objs, good, bad = _slow(path, kept, nums or list(range(first, first + len(kept))), on_bad)
    built = _build(objs, np.asarray(good, dtype=np.int64) | base, columns, checked=True)
    assert built is not None  # every record passed _check_one
    return Decoded(built[0], built[1], len(objs), bad)
