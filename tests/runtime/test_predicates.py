"""`where` predicates as masks: numbers, strings, absent values, in, matches."""

from __future__ import annotations

import numpy as np

from engine.dsl.plan import Pred, PredBool, PredCompare, PredIn, PredMatch, PredNot
from engine.runtime.predicates import pred_mask

COLS = {
    "queue": np.array([1.0, np.nan, 5.0, 0.0]),
    "comm": np.array(["kworker/0", None, "postgres", "kworker"], dtype=object),
    "op": np.array(["write", "read", "write", None], dtype=object),
}


def mask(p: Pred) -> list[bool]:
    return [bool(x) for x in pred_mask(p, COLS, 4)]


def test_numbers_and_absent_values_never_match() -> None:
    assert mask(PredCompare("queue", ">", 0.5)) == [True, False, True, False]
    assert mask(PredCompare("queue", "!=", 1.0)) == [False, False, True, True]
    assert mask(PredCompare("queue", "<=", 5.0)) == [True, False, True, True]
    assert mask(PredCompare("queue", "==", 0.0)) == [False, False, False, True]


def test_strings_compare_and_absent_values_never_match() -> None:
    assert mask(PredCompare("op", "==", "write")) == [True, False, True, False]
    assert mask(PredCompare("op", "!=", "write")) == [False, True, False, False]
    assert mask(PredCompare("comm", "<", "p")) == [True, False, False, True]


def test_in_matches_and_boolean_combinations() -> None:
    assert mask(PredIn("op", ("read", "flush"))) == [False, True, False, False]
    assert mask(PredIn("queue", (0.0, 5.0))) == [False, False, True, True]
    assert mask(PredMatch("comm", r"^kworker/\d")) == [True, False, False, False]
    both = PredBool("and", (PredMatch("comm", "^kw"), PredCompare("op", "==", "write")))
    assert mask(both) == [True, False, False, False]
    either = PredBool("or", (PredMatch("comm", "gres$"), PredCompare("queue", "==", 0.0)))
    assert mask(either) == [False, False, True, True]
    assert mask(PredNot(PredCompare("op", "==", "write"))) == [False, True, False, True]


def test_a_field_the_rows_lack_matches_nothing() -> None:
    assert mask(PredCompare("dirty", ">", 0.0)) == [False] * 4


def test_long_string_columns_factorized_or_not() -> None:
    """Long columns take other paths (a vectorized compare; a table per distinct value
    once the column is factorized for a key): same masks."""
    from engine.runtime.keys import factorize

    vals = ["write", "read", None, "flush", "write"] * 120
    col = np.array(vals, dtype=object)
    preds = [
        PredCompare("op", "==", "write"),
        PredCompare("op", "!=", "write"),
        PredCompare("op", ">=", "read"),
        PredIn("op", ("read", "flush")),
        PredMatch("op", "^w"),
    ]
    want = [
        [v == "write" for v in vals],
        [v is not None and v != "write" for v in vals],
        [v is not None and v >= "read" for v in vals],
        [v in ("read", "flush") for v in vals],
        [v is not None and v.startswith("w") for v in vals],
    ]
    for _ in range(2):
        got = [pred_mask(p, {"op": col}, len(vals)).tolist() for p in preds]
        assert got == want
        factorize(col)  # second round: the cached factorization
