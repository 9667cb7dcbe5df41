"""probes.btf against hand-built BTF blobs and the running kernel's own BTF.

Raw tracepoint programs read struct members at the offsets this reader returns, so a
wrong offset or size, or an accepted bit field, makes them read garbage from kernel
memory without any error. The synthetic blobs pin each layout rule (bit offsets,
anonymous nesting, typedef chains, arrays, signed and 64-bit enumerators) with values
that differ from what each plausible mistake would give; the kernel tests check the
reader on the real ~5 MB blob and the -D flags the block_io and sched_runq probes get.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest

from probes import block_io, btf, sched_runq

INT, PTR, ARRAY, STRUCT, UNION, ENUM, TYPEDEF, CONST, FUNC_PROTO, ENUM64 = (
    1, 2, 3, 4, 5, 6, 8, 10, 13, 19,
)  # fmt: skip


class Blob:
    """A BTF blob under construction: `add` returns the new type's id (from 1)."""

    def __init__(self) -> None:
        self.strs = b"\0"
        self.types: list[bytes] = []

    def s(self, name: str) -> int:
        if not name:
            return 0
        off = len(self.strs)
        self.strs += name.encode() + b"\0"
        return off

    def add(
        self,
        kind: int,
        name: str,
        size_or_type: int,
        entries: Sequence[tuple[int, ...]] = (),
        fmt: str = "",
        extra: bytes = b"",
        kind_flag: bool = False,
    ) -> int:
        info = len(entries) | kind << 24 | int(kind_flag) << 31
        body = b"".join(struct.pack("<" + fmt, *e) for e in entries)
        self.types.append(struct.pack("<III", self.s(name), info, size_or_type) + extra + body)
        return len(self.types)

    def int_(self, name: str, size: int) -> int:
        return self.add(INT, name, size, extra=struct.pack("<I", size * 8))

    def members(
        self, kind: int, name: str, size: int, ms: list[tuple[str, int, int]], flag: bool = False
    ) -> int:
        return self.add(
            kind, name, size, [(self.s(n), t, o) for n, t, o in ms], "III", kind_flag=flag
        )

    def bytes(self, magic: int = 0xEB9F) -> bytes:
        types = b"".join(self.types)
        hdr = struct.pack("<HBBIIIII", magic, 1, 0, 24, 0, len(types), len(types), len(self.strs))
        return hdr + types + self.strs


def sample() -> Blob:
    b = Blob()
    u32 = b.int_("unsigned int", 4)
    u64 = b.int_("long unsigned int", 8)
    sector_t = b.add(TYPEDEF, "sector_t", u64)
    const_sector = b.add(CONST, "", sector_t)
    arr = b.add(ARRAY, "", 0, extra=struct.pack("<III", u32, u32, 5))  # unsigned int[5]
    pu32 = b.add(PTR, "", u32)
    inner = b.members(STRUCT, "", 8, [("x", u32, 0), ("y", u32, 32)])
    anon = b.members(UNION, "", 8, [("", inner, 0), ("z", u64, 0)])
    named = b.members(STRUCT, "named", 4, [("hidden", u32, 0)])
    request = b.members(STRUCT, "request", 64, [
        ("q", pu32, 0), ("cmd_flags", u32, 64), ("", anon, 128), ("__sector", const_sector, 192),
        ("arr", arr, 256), ("inner", named, 416),
    ])  # fmt: skip
    # kind_flag layout: bitfield_size << 24 | bit_offset
    b.members(STRUCT, "bits", 8, [("bf", u32, 3 << 24 | 0), ("whole", u32, 32)], flag=True)
    b.members(STRUCT, "odd", 8, [("misaligned", u32, 12)])
    b.add(ENUM, "req_op", 4, [(b.s("REQ_OP_READ"), 0), (b.s("REQ_OP_WRITE"), 1),
          (b.s("NEG"), 0xFFFFFFFF)], "II", kind_flag=True)  # fmt: skip
    b.add(ENUM, "uns", 4, [(b.s("ALLONES"), 0xFFFFFFFF)], "II")
    b.add(ENUM64, "big", 8, [(b.s("HUGE"), 7, 256)], "III")  # 2**40 + 7
    pvoid = b.add(PTR, "", 0)
    preq = b.add(PTR, "", request)
    proto = b.add(FUNC_PROTO, "", 0, [(0, pvoid), (b.s("rq"), preq), (b.s("n"), u32)], "II")
    b.add(TYPEDEF, "btf_trace_x", b.add(PTR, "", proto))
    b.add(TYPEDEF, "btf_trace_notfn", u32)
    return b


@pytest.fixture(scope="module")
def k() -> btf.Btf:
    return btf.Btf(sample().bytes())


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("q", btf.Member(0, 8, True)),
        ("cmd_flags", btf.Member(8, 4, False)),  # 64 bits: bytes, not bits
        ("__sector", btf.Member(24, 8, False)),  # const -> typedef -> 8-byte int
        ("arr", btf.Member(32, 20, False)),  # 5 * 4
        ("z", btf.Member(16, 8, False)),  # anonymous union at 16
        ("x", btf.Member(16, 4, False)),  # anonymous struct in it
        ("y", btf.Member(20, 4, False)),  # union's 16 + struct's 0 + 4
        ("inner", btf.Member(52, 4, False)),
    ],
)
def test_member_offset_size_pointer(k: btf.Btf, name: str, want: btf.Member) -> None:
    assert k.member("request", name) == want


def test_kind_flag_member_without_bitfield_size_is_accepted(k: btf.Btf) -> None:
    assert k.member("bits", "whole") == btf.Member(4, 4, False)


@pytest.mark.parametrize(
    ("struct_name", "name"),
    [
        ("bits", "bf"),  # byte-aligned, but a 3-bit field
        ("odd", "misaligned"),  # bit offset 12
        ("request", "nope"),
        ("request", "hidden"),  # inside a *named* member: not searched
        ("missing", "q"),
        ("named", "x"),
    ],
)
def test_member_refused(k: btf.Btf, struct_name: str, name: str) -> None:
    with pytest.raises(btf.BtfError):
        k.member(struct_name, name)


@pytest.mark.parametrize(
    ("enum", "name", "want"),
    [
        ("req_op", "REQ_OP_WRITE", 1),
        ("req_op", "NEG", -1),  # kind_flag: signed
        ("uns", "ALLONES", 2**32 - 1),  # no kind_flag: unsigned
        ("big", "HUGE", 2**40 + 7),
        ("", "NEG", -1),
        ("", "HUGE", 2**40 + 7),
        ("", "REQ_OP_WRITE", 1),
    ],
)
def test_enum_value(k: btf.Btf, enum: str, name: str, want: int) -> None:
    assert k.enum_value(enum, name) == want


@pytest.mark.parametrize(("enum", "name"), [("req_op", "NOPE"), ("", "NOPE"), ("big", "NEG")])
def test_enum_value_missing(k: btf.Btf, enum: str, name: str) -> None:
    with pytest.raises(btf.BtfError):
        k.enum_value(enum, name)


def test_raw_tracepoint_args(k: btf.Btf) -> None:
    assert k.raw_tracepoint_args("x") == ["struct request *", "unsigned int"]


@pytest.mark.parametrize("name", ["notfn", "absent"])
def test_raw_tracepoint_args_refused(k: btf.Btf, name: str) -> None:
    with pytest.raises(btf.BtfError):
        k.raw_tracepoint_args(name)


@pytest.mark.parametrize(
    "data",
    [
        sample().bytes(magic=0x9FEB),  # big-endian BTF, or not BTF at all
        sample().bytes()[:23],  # shorter than the header
        sample().bytes()[:40],  # header promises types the file does not hold
    ],
    ids=["bad-magic", "short-header", "truncated-types"],
)
def test_bad_blob(data: bytes) -> None:
    with pytest.raises(btf.BtfError):
        btf.Btf(data)


def test_vmlinux_missing_names_path() -> None:
    with pytest.raises(btf.BtfError, match="/nonexistent"):
        btf.vmlinux(Path("/nonexistent"))


@pytest.mark.parametrize("blob", [Blob(), sample()], ids=["empty", "no-tracepoints"])
def test_cflags_refused_without_types(blob: Blob) -> None:
    kernel = btf.Btf(blob.bytes())
    with pytest.raises(btf.BtfError):
        block_io.raw_complete_cflags(kernel)
    with pytest.raises(btf.BtfError):
        sched_runq.raw_wakeup_cflags(kernel)


real = pytest.mark.skipif(
    not os.access(btf.VMLINUX, os.R_OK), reason=f"no readable {btf.VMLINUX} (kernel without BTF)"
)


@real
def test_kernel_members() -> None:
    k = btf.vmlinux()
    assert k.member("request", "__sector").size == 8
    assert k.member("request", "q") == btf.Member(0, 8, True)  # first member for ages
    pid, tgid = k.member("task_struct", "pid"), k.member("task_struct", "tgid")
    assert (pid.size, pid.pointer) == (4, False)
    assert tgid.offset == pid.offset + 4  # `pid_t pid; pid_t tgid;` are adjacent
    assert pid.offset > 0


@real
def test_kernel_tracepoints_and_enums() -> None:
    k = btf.vmlinux()
    assert k.raw_tracepoint_args("block_rq_complete")[0] == "struct request *"
    assert k.raw_tracepoint_args("sched_wakeup") == ["struct task_struct *"]
    assert k.enum_value("req_op", "REQ_OP_WRITE") == 1
    assert k.enum_value("", "REQ_OP_WRITE") == 1


@real
def test_kernel_cflags() -> None:
    k = btf.vmlinux()
    blk = block_io.raw_complete_cflags(k)
    assert blk[0] == "-DTH_RAW_COMPLETE=1"
    flags = dict(f[2:].split("=", 1) for f in blk)
    at = {m: k.member("request", m).offset for m in ("__sector", "cmd_flags", "q")}
    base = int(flags["TH_RQ_SPAN_OFF"])
    assert base + int(flags["TH_AT_RQ_SECTOR"]) == at["__sector"]
    assert base + int(flags["TH_AT_RQ_CMD_FLAGS"]) == at["cmd_flags"]
    assert base + int(flags["TH_AT_RQ_Q"]) == at["q"]
    assert base + int(flags["TH_RQ_SPAN"]) >= at["__sector"] + 8  # the span holds them all
    assert "-DTH_REQ_OP_WRITE=1" in blk
    pid = k.member("task_struct", "pid").offset
    assert sched_runq.raw_wakeup_cflags(k) == ("-DTH_RAW_WAKEUP=1", f"-DTH_OFF_TASK_PID={pid}")


@real
@pytest.mark.parametrize("probe", [block_io, sched_runq], ids=["block_io", "sched_runq"])
def test_probes_listing_says_which_programs_are_raw(
    probe: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, why = probe.check()  # type: ignore[attr-defined]
    if not ok:
        pytest.skip(f"the probe cannot run here: {why}")
    assert "raw tracepoint" in why and "kernel BTF" in why, why
    monkeypatch.setenv(btf.RAW_ENV, "0")
    ok, why = probe.check()  # type: ignore[attr-defined]
    assert ok and "raw" not in why, why
