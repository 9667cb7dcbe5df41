"""Each probe's numpy sample dtype matches its C struct, field by field (gcc, no kernel).

The drain views ring bytes through the dtype: a field added on one side only would
garble every event silently, so the two layouts are compared here.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROBES = ["block_io", "jbd2", "mm_reclaim", "net_drop", "oom", "proc_exec", "sched_runq", "tcp"]
STRUCT = re.compile(r"^struct (\w+_sample) \{\n(.*?)^\};", re.S | re.M)
FIELD = re.compile(r"^\s*[\w ]+?\s+(\w+)(?:\[\d+\])?;", re.M)
PRELUDE = (
    "#include <stdio.h>\n#include <stddef.h>\n"
    "typedef unsigned long long u64; typedef unsigned int u32;\n"
    "typedef unsigned short u16; typedef unsigned char u8;\n"
)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to read C layouts")
@pytest.mark.parametrize("name", PROBES)
def test_dtype_matches_c_struct(name: str, tmp_path: Path) -> None:
    mod = importlib.import_module(f"probes.{name}")
    src = (Path(str(mod.__file__)).parent / f"{name}.bpf.c").read_text()
    m = STRUCT.search(src)
    assert m is not None, f"no *_sample struct in {name}.bpf.c"
    struct, body = m.group(1), m.group(2)
    fields = FIELD.findall(body)
    prints = "".join(
        f'printf("{f} %zu %zu\\n", offsetof(struct {struct}, {f}), '
        f"sizeof(((struct {struct} *)0)->{f}));\n"
        for f in fields
    )
    c = (
        f"{PRELUDE}struct {struct} {{\n{body}}};\nint main(void) {{\n{prints}"
        f'printf("sizeof %zu 0\\n", sizeof(struct {struct}));\nreturn 0;\n}}\n'
    )
    (tmp_path / "l.c").write_text(c)
    subprocess.run(["cc", "-o", str(tmp_path / "l"), str(tmp_path / "l.c")], check=True)
    out = subprocess.run([str(tmp_path / "l")], check=True, capture_output=True, text=True)
    layout = {k: (int(o), int(s)) for k, o, s in (ln.split() for ln in out.stdout.splitlines())}
    dt = mod.PAYLOAD
    assert layout.pop("sizeof")[0] == dt.itemsize
    assert list(layout) == list(dt.names)
    for f, (off, size) in layout.items():
        ftype, foff = dt.fields[f][:2]
        assert (foff, ftype.itemsize) == (off, size), f"{name}.{f}"
