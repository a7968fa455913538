"""The one-condition space-delimited matcher (plain_field / python_plain_field)
against the general field path (_slots over split_fields), on both backends."""
from __future__ import annotations

import random

import pytest

from castlewatch import compile_pattern
from castlewatch.grammar import literals as backends
from castlewatch.grammar.compiler import split_fields

PATS = ['[a, b, c=x]', '[a, b=x, c]', '[a=x, b]', '[a, b>5]', '[a, b=5]', '[a, b!=x]', '[a, b=x*]', '[a, b=*x]', '[a, b=*x*]',
        '[a=x]', '[a, b, c!=x]', '[a, b, c="x y"]', '[a, b, c=x*]', '[a,b,c,d=5]', '[a, b<=3, c]', '[a, b="é"]', '[a, b=x, c, d]',
        '[a, b="[x]"]', '[a, b=REJECT]', '[a, b, c = "x\\"y"]', '[a, b=-1]', '[a, b=1e3]', '[a, b!=5]']
TOK = ['x', 'y', 'x y', '5', '6', '1e3', '1000', '-1', '3', 'xx', 'ax', 'xa', 'axa', 'é', 'REJECT', '"x y"', '"x"', '[x]', '[x', 'x]',
       '"', '[', '\x1c', '\x1f', '\x1d', '\u2003', '\u00a0', '\t', '\x0b', '\r', '\n', '\x0c', 'x\\"y', '"x\\"y"', '\ud800',
       '\U0001F600', '0x5', '+5', '5.0', '∞']


def _outcome(fp, m):
    try:
        fast = fp.matches(m)
    except Exception as e:  # noqa: BLE001
        fast = ("raised", type(e).__name__)
    general = (fp.prefilter is None or fp.prefilter(m)) and fp._slots(split_fields(m), m) is not None
    return fast, general


@pytest.mark.parametrize("seed", range(4))
def test_one_condition_matches_as_the_general_path(seed):
    rng = random.Random(seed)
    before = backends.backend()
    try:
        for _ in range(3000):
            p = rng.choice(PATS)
            m = "".join(rng.choice(TOK) + rng.choice([" ", " ", "  ", "\t", ""]) for _ in range(rng.randint(0, 6)))
            got = set()
            for name in backends.AVAILABLE:
                backends.use_backend(name)
                got.update(_outcome(compile_pattern(p), m))
            assert len(got) == 1, (p, m, got)
    finally:
        backends.use_backend(before)
