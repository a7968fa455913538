"""Adversarial differential tests of the fields plan (castlewatch.engine.batch.field_plan,
the C/Python split's numbers, comparisons and packed keys) against the general evaluator,
on both matcher backends (``run_both`` from test_batch)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castlewatch.engine.evaluate import TimestampSpec

from test_batch import T0, mf, run_both

pytestmark = pytest.mark.usefixtures("literal_backend")

P = "[a, b, c, d, e, t]"

# tokens a field may hold: 7/8 bytes, 15/16 digits, leading zeros, signs, 2^53 edges,
# non-ASCII digits, NUL/DEL, -0, subnormals
TOKENS = [
    "X", "Y", "ABCDEFG", "ABCDEFGH", "1234567", "12345678", "0", "00", "007", "0" * 15, "0" * 16,
    "9" * 15, "9" * 16, "1" * 16, "900719925474099", "9007199254740992", "9007199254740993",
    "+5", "-5", "-0", "+0", "-0.0", "0.0", "1e3", "1E3", ".5", "5.", "0x10", "1_000", "1e-320", "-1e-320",
    "1e400", "-", "a\x00", "\x00", "\x7f", "A\x00\x00", "é", "\u0663", "\uff11", "\u00b2", "X\x85", "1\xa0",
]
SEPS = [" ", " ", " ", "  ", "\t", "\x0b", "\x0c", "\r", "\x1c", "\x1f"]


def _times(fmt: str) -> list[str]:
    s = T0 if fmt == "epoch_s" else T0 * 1000
    base = [str(s), str(s + 1), str(s + 61), str(s - 7200), "0" + str(s), "+" + str(s), str(s) + ".0", "-0", "0"]
    if fmt == "epoch_s":
        base += ["253402300799", "253402300800", "-62135596800", "-62135596801", "0000" + str(s),
                 "000000000001", "0000000000001", "1e9", str(s) + "e0", "99999999999999"]
    else:
        base += ["253402300799999", "253402300800000", "-62135596800000", "-62135596800001", "000" + str(s),
                 "999999999999999", "9999999999999999", "1.7e12"]
    return base


@st.composite
def line(draw, fmt: str, clock: list) -> str:
    kind = draw(st.sampled_from(["plain"] * 6 + ["hostile", "blank", "fieldcount"]))
    clock[0] += draw(st.integers(0, 2))
    step = 1000 if fmt == "epoch_ms" else 1
    t = str((clock[0] - draw(st.sampled_from([0, 0, 0, 7200]))) * step)
    a = draw(st.sampled_from(["X", "Y", "X", "ABCDEFGH"]))
    b = draw(st.sampled_from(["p", "q", "ABCDEFG", "ABCDEFGH", "r" * 9, "1", "01"]))
    c = draw(st.sampled_from(["0", "1", "40", "-0", "0.5", "000123", "9" * 15, "9" * 16, "1e-320", "-1e-320"]))
    d = draw(st.sampled_from(["d1", "d2", "-0", "0"]))
    e = draw(st.sampled_from(["e", "f"]))
    fields = [a, b, c, d, e, t]
    if kind == "hostile":
        for _ in range(draw(st.integers(1, 3))):
            token = draw(st.sampled_from(TOKENS + _times(fmt)))
            # (non-ASCII bytes where the time field would be: test_non_ascii_time_slot_of_a_line_the_split_refuses)
            fields[draw(st.integers(0, 5) if token.isascii() else st.integers(1, 4))] = token
    if kind == "blank":
        return draw(st.sampled_from(["", " ", "\t", "\x1c", "   \x0b "]))
    if kind == "fieldcount":
        fields = fields[: draw(st.integers(1, 5))] if draw(st.booleans()) else fields + ["extra"]
    seps = [draw(st.sampled_from(SEPS)) if kind == "hostile" else " " for _ in fields]
    lead = draw(st.sampled_from(["", "", " ", "\t"])) if kind == "hostile" else ""
    return lead + "".join(f + s for f, s in zip(fields, seps))[:-1] + (draw(st.sampled_from(["", " "])))


def _pat(order: tuple[str, ...], **conds: str) -> str:
    return "[" + ", ".join(n + conds.get(n, "") for n in order) + "]"


FIRST = ("a", "b", "c", "d", "e", "t")
TIME_FIRST = ("t", "a", "b", "c", "d", "e")


def _filters(with_dims: bool, order: tuple[str, ...] = FIRST) -> list[dict]:
    at = {n: f"${i + 1}" for i, n in enumerate(order)}
    out = [
        mf("All", _pat(order), "$c"),
        mf("CondX", _pat(order, a='="X"'), at["c"]),
        mf("NotX", _pat(order, a='!="X"'), "1", default=0),
        mf("Long", _pat(order, a='="ABCDEFGH"', b='!="ABCDEFG"'), "$c"),
        mf("ByD", _pat(order), "$d"),
    ]
    if with_dims:
        out += [mf("DimB", _pat(order), "$c", dims={"B": "$b"}),
                mf("DimBE", _pat(order, a='="X"'), "$c", dims={"B": "$b", "E": at["e"]})]
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from(["epoch_s", "epoch_ms"]), st.sampled_from([0, 60_000, 3_600_000]),
       st.booleans(), st.sampled_from([6, 1]))
def test_hostile_lines_agree(data, fmt, lateness, with_dims, position):
    clock = [T0]
    batches = [data.draw(st.lists(line(fmt, clock), min_size=1, max_size=60)) for _ in range(data.draw(st.integers(1, 3)))]
    order = FIRST
    if position == 1:  # the time first: move a line's last field to the front
        order = TIME_FIRST
        batches = [[" ".join([m.split()[-1], *m.split()[:-1]]) if len(m.split()) == 6 and m.isascii()
                    else m.encode("ascii", "replace").decode() for m in batch] for batch in batches]
    spec = TimestampSpec("position", position=position, format=fmt)
    run_both(_filters(with_dims, order), spec, batches, lateness, require_plan="FieldPlan")


@pytest.mark.parametrize("fmt", ["epoch_s", "epoch_ms"])
def test_time_edges_agree(fmt):
    lines = [f"X p 1 d1 e {t}" for t in _times(fmt)] + [f"X p -0 d1 e {t}" for t in _times(fmt)]
    run_both(_filters(True), TimestampSpec("position", position=6, format=fmt), [lines, lines[::-1]], 0,
             require_plan="FieldPlan")


def test_many_distinct_dimension_values_near_the_limit():
    """~1,000 distinct packed (<= 7 bytes) and unpacked (8 bytes) values, in blocks."""
    for width in (7, 8):
        lines = [f"X {i:0{width}d} 1 d1 e {T0 + i // 50}" for i in range(1010)]
        run_both([mf("DimB", P, "$c", dims={"B": "$b"})], TimestampSpec("position", position=6, format="epoch_s"),
                 [lines[:990], lines[990:1000], lines[1000:]], require_plan="FieldPlan")


def test_negative_zero_values_across_blocks():
    lines = [f"X p {v} d1 e {T0}" for v in ["-0", "0", "-0", "0"] * 80]
    lines += [f"X p {v} d1 e {T0}" for v in range(100)]
    run_both(_filters(True), TimestampSpec("position", position=6, format="epoch_s"),
             [lines[:3], lines[3:300], lines[300:]], require_plan="FieldPlan")


@pytest.mark.parametrize("position, line", [
    (6, "X p 0 d1 e \u00e9"),  # six fields, the time one not ASCII: the split refuses the line
    (1, "\u00e9 p 0 d1 e 1709629200"),
    (6, "X p \"0\" d1 e 17096292\u00e90"),
])
def test_non_ascii_time_slot_of_a_line_the_split_refuses(position, line):
    """A line the split does not take (not ASCII) goes to the general path whole; its
    time field must not be read (decoded as ASCII) by the fields plan."""
    order = FIRST if position == 6 else TIME_FIRST
    run_both([mf("All", _pat(order), "$c")], TimestampSpec("position", position=position, format="epoch_s"),
             [[f"X p 0 d1 e {T0}" if position == 6 else f"{T0} X p 0 d1 e", line]], 0, require_plan="FieldPlan")
