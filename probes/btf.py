"""The running kernel's own type layouts, from its BTF (/sys/kernel/btf/vmlinux).

Raw tracepoint programs get the tracepoint's C arguments (`struct request *`, ...),
not the formatted record, so they read struct members at offsets that change from
one kernel build to the next. bcc takes layouts from the installed headers, which
need not match the running kernel (this project links the closest Debian headers
on kernels that have none): the offsets are read here from the kernel's BTF and
handed to the C as -D flags. Only what those programs need is parsed: struct and
union members (through anonymous nesting), enumerators, and a raw tracepoint's
prototype. No BTF, or a member missing: `BtfError`, and the probe keeps its
tracepoint programs.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RAW_ENV", "VMLINUX", "Btf", "BtfError", "Member", "raw_cflags", "vmlinux"]

VMLINUX = Path("/sys/kernel/btf/vmlinux")
RAW_ENV = "TRACEHOUND_RAW_TRACEPOINTS"  # 0: the tracepoint programs only

_MAGIC = 0xEB9F
_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _FWD, _TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
_VOLATILE, _CONST, _RESTRICT, _FUNC, _FUNC_PROTO, _VAR, _DATASEC, _FLOAT = (
    9, 10, 11, 12, 13, 14, 15, 16,
)  # fmt: skip
_DECL_TAG, _TYPE_TAG, _ENUM64 = 17, 18, 19
# bytes that follow the 12-byte common header: fixed, and per vlen entry
_EXTRA = {_INT: (4, 0), _ARRAY: (12, 0), _STRUCT: (0, 12), _UNION: (0, 12), _ENUM: (0, 8),
          _FUNC_PROTO: (0, 8), _VAR: (4, 0), _DATASEC: (0, 12), _DECL_TAG: (4, 0),
          _ENUM64: (0, 12)}  # fmt: skip
_MODIFIERS = (_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG)


class BtfError(Exception):
    """The kernel's BTF is missing, unreadable, or lacks what a probe needs."""


@dataclass(frozen=True, slots=True)
class Member:
    offset: int  # bytes from the start of the outermost struct
    size: int  # bytes of the member's type (after typedefs and qualifiers)
    pointer: bool


@dataclass(frozen=True, slots=True)
class _Type:
    kind: int
    name: str
    kind_flag: bool
    size_or_type: int
    at: int  # offset of the entries after the common header
    vlen: int


class Btf:
    """One BTF blob, indexed by type name on first use."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 24:
            raise BtfError("BTF too short")
        magic, ver, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
            "<HBBIIIII", data, 0
        )
        if magic != _MAGIC:
            raise BtfError(f"not BTF (magic {magic:#x})")
        if ver != 1:
            raise BtfError(f"BTF version {ver}, not 1")
        if hdr_len < 24 or hdr_len + max(type_off + type_len, str_off + str_len) > len(data):
            raise BtfError("BTF truncated")
        self._data = data
        self._strs = hdr_len + str_off
        self._str_end = self._strs + str_len
        self._pos = [0]  # type id -> offset of its header (id 0 is void)
        self._by_name: dict[tuple[int, str], int] = {}
        named = (_STRUCT, _UNION, _ENUM, _ENUM64, _TYPEDEF)
        unpack, extra, pos = struct.Struct("<III").unpack_from, _EXTRA, hdr_len + type_off
        end = pos + type_len
        tid = 0
        while pos + 12 <= end:
            tid += 1
            self._pos.append(pos)
            name_off, info, _st = unpack(data, pos)
            kind = (info >> 24) & 0x1F
            if not _INT <= kind <= _ENUM64:  # a kind of a later kernel: its size is unknown
                raise BtfError(f"BTF type kind {kind} unknown")
            fixed, per = extra.get(kind, (0, 0))
            if name_off and kind in named:
                self._by_name.setdefault((kind, self._str(name_off)), tid)
            pos += 12 + fixed + per * (info & 0xFFFF)

    def _str(self, off: int) -> str:
        start = self._strs + off
        try:
            end = self._data.index(b"\0", start, self._str_end)
            return self._data[start:end].decode()
        except (ValueError, UnicodeDecodeError):  # ValueError: no NUL before the end
            raise BtfError(f"BTF string at {off} is corrupt") from None

    def _type(self, tid: int) -> _Type | None:
        if tid <= 0 or tid >= len(self._pos):
            return None
        pos = self._pos[tid]
        name_off, info, st = struct.unpack_from("<III", self._data, pos)
        return _Type(
            (info >> 24) & 0x1F, self._str(name_off), bool(info >> 31), st, pos + 12, info & 0xFFFF
        )

    def _find(self, kind: int, name: str) -> _Type:
        t = self._type(self._by_name.get((kind, name), 0))
        if t is None:
            raise BtfError(f"no {name!r} in the kernel's BTF")
        return t

    def _resolve(self, tid: int) -> _Type | None:
        """Through typedefs and qualifiers."""
        t = self._type(tid)
        while t is not None and t.kind in _MODIFIERS:
            t = self._type(t.size_or_type)
        return t

    def _size(self, t: _Type | None) -> int:
        if t is None:
            return 0
        if t.kind == _PTR:
            return 8
        if t.kind == _ARRAY:
            elem, _index, n = struct.unpack_from("<III", self._data, t.at)
            return n * self._size(self._resolve(elem))
        return t.size_or_type  # int, enum, struct, union, float: their size

    def member(self, struct_name: str, member: str) -> Member:
        """A struct member's byte offset and size (anonymous unions and structs
        searched too). Bit fields are refused: a raw program reads whole bytes."""
        t = self._find(_STRUCT, struct_name)
        found = self._member_in(t, member, 0)
        if found is None:
            raise BtfError(f"struct {struct_name} has no member {member!r} in the kernel's BTF")
        return found

    def _member_in(self, t: _Type, member: str, base_bits: int) -> Member | None:
        for i in range(t.vlen):
            name_off, mtype, off = struct.unpack_from("<III", self._data, t.at + 12 * i)
            bits, bitfield = (off & 0xFFFFFF, off >> 24) if t.kind_flag else (off, 0)
            name = self._str(name_off)
            mt = self._resolve(mtype)
            if name == member:
                if bitfield or (base_bits + bits) % 8:
                    raise BtfError(f"{t.name}.{member} is a bit field")
                return Member(
                    (base_bits + bits) // 8, self._size(mt), mt is not None and mt.kind == _PTR
                )
            if not name and mt is not None and mt.kind in (_STRUCT, _UNION):
                got = self._member_in(mt, member, base_bits + bits)
                if got is not None:
                    return got
        return None

    def enum_value(self, enum_name: str, enumerator: str) -> int:
        """An enumerator's value (`enum_name` '' searches every enum)."""
        kinds = (_ENUM, _ENUM64)
        types = (
            [i for k in kinds if (i := self._by_name.get((k, enum_name))) is not None]
            if enum_name
            else range(1, len(self._pos))
        )
        for tid in types:
            t = self._type(tid)
            if t is None or t.kind not in kinds:
                continue
            step = 8 if t.kind == _ENUM else 12
            for i in range(t.vlen):
                at = t.at + step * i
                (name_off,) = struct.unpack_from("<I", self._data, at)
                if self._str(name_off) != enumerator:
                    continue
                if t.kind == _ENUM:
                    (v,) = struct.unpack_from("<i" if t.kind_flag else "<I", self._data, at + 4)
                    return int(v)
                lo, hi = struct.unpack_from("<II", self._data, at + 4)
                return lo | hi << 32
        raise BtfError(f"no enumerator {enumerator!r} in the kernel's BTF")

    def raw_tracepoint_args(self, name: str) -> list[str]:
        """The C types of a raw tracepoint's arguments, from its `btf_trace_<name>`
        typedef (a pointer to a prototype whose first parameter is the probe's data):
        'struct request *', 'unsigned int', ..."""
        td = self._find(_TYPEDEF, f"btf_trace_{name}")
        ptr = self._type(td.size_or_type)
        proto = self._type(ptr.size_or_type) if ptr is not None and ptr.kind == _PTR else None
        if proto is None or proto.kind != _FUNC_PROTO:
            raise BtfError(f"btf_trace_{name} is not a function pointer")
        out = []
        for i in range(1, proto.vlen):  # parameter 0: void *__data
            _name_off, ptype = struct.unpack_from("<II", self._data, proto.at + 8 * i)
            out.append(self._spell(ptype))
        return out

    def _spell(self, tid: int) -> str:
        t = self._type(tid)
        if t is None:
            return "void"
        if t.kind == _PTR:
            return self._spell(t.size_or_type) + " *"
        if t.kind in (_CONST, _VOLATILE, _RESTRICT, _TYPE_TAG):
            return self._spell(t.size_or_type)
        prefix = {_STRUCT: "struct ", _UNION: "union ", _ENUM: "enum ", _ENUM64: "enum "}
        return prefix.get(t.kind, "") + (t.name or "?")


@functools.cache
def vmlinux(path: Path = VMLINUX) -> Btf:
    """The running kernel's BTF, parsed once (~5 MB)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BtfError(f"{path}: {e.strerror or e} (a kernel built without BTF)") from None
    return Btf(data)


def raw_cflags(options: dict[str, Any], build: Callable[[Btf], tuple[str, ...]]) -> tuple[str, ...]:
    """A probe's -D flags for its raw tracepoint programs, or () for its tracepoint
    ones: option `raw` (popped from `options`; default env TRACEHOUND_RAW_TRACEPOINTS,
    on unless 0) and a kernel BTF with what `build` reads. The probe passes them as
    `preferred_cflags`: a kernel that refuses the raw programs gets the others."""
    want = options.pop("raw", None)
    if want is None:
        want = os.environ.get(RAW_ENV, "1").strip().lower() not in ("0", "no", "off", "false")
    if not want:
        return ()
    try:
        return build(vmlinux())
    except (BtfError, struct.error, IndexError):  # struct.error: a record cut short
        return ()
