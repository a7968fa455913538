"""The literal plan's block-scan findings handed to the general evaluator
(``LiteralPlan._found``) against the evaluator's own scan, over random filter mixes."""
from __future__ import annotations

import random

import pytest

from castlewatch.grammar import literals as backends

from test_batch import JSON_TIME, mf, run_both

MANY = [" || ".join(f'$.e = "lit{i:02d}"' for i in range(j, j + 24)) for j in (0, 24, 48)]
POOL = [
    'ConsoleLogin', '"abc"', '?ERROR ?WARN', 'abcd efgh', '"ab cd"', '"café"',
    '{ $.a = "abc" }', '{ $.a = "abcd" }', '{ $.b = "abcde" }', '{ $.b = "bcde" }', '{ $.c = "café" }',
    '{ $.c = "é" }', '{ $.w = "Зоя" }', '{ $.a = "ab*" }', '{ $.a = "abcd" && $.b = "bcd" }',
    '{ $.eventName = "ConsoleLogin" }', *['{ ' + m + ' }' for m in MANY], '%abcd%', '%lit6[0-9]%', '%caf\\xe9%',
    '[x, y="abcd"]', '[x, y="abc", z]', '{ $.x = "\u00ff\u00ffab" }', '{ $.a = "aaaa" }', '{ $.a != "abcd" }',
    '{ $.a = 5 }', '{ $.a NOT EXISTS }',
]
VALUES = ['"abc"', '"abcd"', '"abcde"', '"bcde"', '"café"', '"é"', '"Зоя"', '"lit07"', '"lit65"', '"lit69x"', '"aaaaa"',
          '"ab\\u0063d"', '"\\u00e9"', '"\u00ff\u00ffab"', '5', 'null', '"ConsoleLogin"', '"\u2603"', '"\ud800"', '"ERROR"']


def _line(rng: random.Random) -> str:
    n = rng.randint(0, 4)
    body = "".join(f',"{rng.choice("abcewxy")}":{rng.choice(VALUES)}' for _ in range(n))
    line = '{"eventTime":"2024-03-05T09:%02d:00Z"%s}' % (rng.randint(0, 59), body)
    return rng.choice([line, line, line, line[:-1], " " + line, "plain abcd efgh " + rng.choice(VALUES),
                       "x abcd", "x abc", "WARN café", "\u2603 " + line])


@pytest.mark.parametrize("backend", ["c", "python"])
@pytest.mark.parametrize("seed", range(40))
def test_random_mixes_agree(backend, seed):
    if backend not in backends.AVAILABLE:
        pytest.skip("no C backend")
    before = backends.backend()
    backends.use_backend(backend)
    try:
        rng = random.Random(seed)
        pats = rng.sample(POOL, rng.randint(2, 7))
        if seed % 4 == 0:  # more than 64 block-scanned literals: several mask words
            pats += ['{ ' + m + ' }' for m in MANY if '{ ' + m + ' }' not in pats]
        filters = [mf(f"F{i}", p, default=0 if rng.random() < 0.3 else None) for i, p in enumerate(pats)]
        batches = [[_line(rng) for _ in range(rng.randint(1, 50))] for _ in range(rng.randint(1, 3))]
        run_both(filters, JSON_TIME, batches)
    finally:
        backends.use_backend(before)


def _windows_by_dict(literals, sample):
    """The scan's window choice counted with a dict of 4-byte slices (the definition)."""
    stride = max(1, min(8, min(len(lit) for lit in literals) - 3))
    counts = {}
    for message in sample:
        data = message.encode("latin-1", "replace")
        for i in range(len(data) - 3):
            counts[data[i:i + 4]] = counts.get(data[i:i + 4], 0) + 1
    firsts = []
    for lit in literals:
        cost = [counts.get(lit[o:o + 4], 0) for o in range(len(lit) - 3)]
        totals = [sum(cost[o:o + stride]) for o in range(len(cost) - stride + 1)]
        firsts.append(totals.index(min(totals)))
    return tuple(firsts), stride


@pytest.mark.parametrize("seed", range(30))
def test_scan_windows_are_the_least_frequent_in_the_sample(seed):
    from castlewatch.engine.batch.blocks import windows

    rng = random.Random(seed)
    alphabet = "abcde\u00e9\u2603 \""
    sample = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(rng.randint(0, 8))]
    literals = tuple("".join(rng.choice("abcde\u00e9")
                             for _ in range(rng.randint(4, 14))).encode("latin-1") for _ in range(rng.randint(1, 6)))
    assert windows(literals, sample) == _windows_by_dict(literals, sample)
