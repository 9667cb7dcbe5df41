"""Bulk decoding helpers: C strings and device numbers to Python strings, per distinct value.

Columns repeat a handful of values (comms, devices), so each helper decodes the
distinct values once (np.unique) and scatters them back: Python work per distinct
value, not per event.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["cstrings", "dev_name", "dev_names", "lookup"]

_MINORBITS = 20  # the kernel's internal dev_t: major << 20 | minor
_dev_cache: dict[int, str] = {}
_STR_CACHE_MAX = 4096
_str_cache: dict[bytes, str] = {}  # C string bytes (as np.unique gives them) -> str
SYS_DEV_BLOCK = Path("/sys/dev/block")


def cstrings(col: np.ndarray) -> np.ndarray:
    """A fixed-size `S<n>` column (NUL-padded C strings) -> an object column of str.

    Rows with equal bytes share one str object (`names[inverse]` copies references),
    and a value seen in an earlier batch is reused from a small cache, not decoded
    again: a column costs 8 bytes a row plus one str per distinct value ever seen.
    """
    if col.shape[0] == 0:
        return np.empty(0, dtype=object)
    uniq, inverse = np.unique(col, return_inverse=True)
    names = np.empty(uniq.shape[0], dtype=object)
    cache = _str_cache
    for i, u in enumerate(uniq.tolist()):
        name = cache.get(u)
        if name is None:
            if len(cache) >= _STR_CACHE_MAX:
                cache.clear()  # churning values (paths, ids): start over
            name = cache[u] = u.split(b"\0", 1)[0].decode("utf-8", "replace")
        names[i] = name
    return names[inverse.reshape(-1)]


def dev_name(dev: int) -> str:
    """A kernel dev_t as a block device name (`loop0`), via /sys/dev/block; cached."""
    name = _dev_cache.get(dev)
    if name is None:
        major, minor = dev >> _MINORBITS, dev & ((1 << _MINORBITS) - 1)
        name = f"{major}:{minor}"
        try:
            for line in (SYS_DEV_BLOCK / name / "uevent").read_text().splitlines():
                if line.startswith("DEVNAME="):
                    name = line[len("DEVNAME=") :]
                    break
            _dev_cache[dev] = name
        except OSError:
            pass  # not cached: the device may appear later
    return name


def dev_names(col: np.ndarray) -> np.ndarray:
    return lookup(col, dev_name)


def lookup(col: np.ndarray, fn: Callable[[int], str]) -> np.ndarray:
    """Apply `fn` (int -> str) once per distinct value of an integer column."""
    if col.shape[0] == 0:
        return np.empty(0, dtype=object)
    uniq, inverse = np.unique(col, return_inverse=True)
    names = np.array([fn(int(u)) for u in uniq.tolist()], dtype=object)
    return names[inverse.reshape(-1)]
