"""Adversarial tests of the batch fold (castlewatch.engine.batch.fold) and Datapoint.add_block
against MinuteAggregator.add one by one: -0.0 among the values, datapoints crossing the
64-value dict, blocks with some datapoints given lists and others arrays (LIST_BLOCK), late
contributions, and the JSON Lines sink writing large datapoints from numpy arrays."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castlewatch.engine.aggregate import MinuteAggregator
from castlewatch.engine.batch import fold as batch_fold
from castlewatch.model import Stats

from test_batch import T0, _point

VALUES = [0.0, -0.0, 1.0, -1.0, 0.1, 1e16, -1e16, 2.0**-1074, -(2.0**-1074), 1e300, 7.0]


def _state(g: MinuteAggregator) -> tuple:
    return ([(m, [(k, _point(p)) for k, p in w.items()]) for m, w in g.windows.items()],
            [(m, [(k, _point(p)) for k, p in w.items()]) for m, w in g.late.items()],
            [_point(p) for p in g.sealed], list(g.watermarks.items()), list(g.late_clocks.items()),
            g.next_serial, g.stats.late_events)


def _zero_signs(g: MinuteAggregator) -> list:
    points = [p for w in g.windows.values() for p in w.values()] + [p for w in g.late.values() for p in w.values()]
    return [[math.copysign(1, v) for v, _ in p.items() if v == 0] for p in points + list(g.sealed)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_fold_with_negative_zero_and_many_values_equals_add(data):
    n_keys = data.draw(st.sampled_from([1, 2, 7]))
    keys = [("ns", f"m{i % 2}", (("d", str(i)),), "None") for i in range(n_keys)]
    lateness = data.draw(st.sampled_from([0, 60_000]))
    a, b = MinuteAggregator(Stats(), lateness), MinuteAggregator(Stats(), lateness)
    clock = T0 * 1000
    for _ in range(data.draw(st.integers(1, 4))):
        n = data.draw(st.sampled_from([1, 3, 50, 255, 256, 257, 400, 1500]))
        spread = data.draw(st.sampled_from([3, 40, 70, 300, 5000]))  # distinct values: below, across, beyond 64
        zero_share = data.draw(st.sampled_from([0, 3, 20]))
        seed = data.draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        kid = rng.integers(0, n_keys, n) if data.draw(st.booleans()) else np.sort(rng.integers(0, n_keys, n))
        vals = rng.integers(0, spread, n).astype(np.float64)
        z = rng.integers(0, 100, n) < zero_share
        vals[z] = np.where(rng.integers(0, 2, int(z.sum())) == 1, -0.0, 0.0)
        special = rng.integers(0, 100, n) < 5
        vals[special] = rng.choice(VALUES, int(special.sum()))
        if data.draw(st.booleans()):  # no -0.0 in this block: the fold takes it (a -0.0 held stays)
            vals[vals == 0] = 0.0
        step = rng.integers(0, data.draw(st.sampled_from([3, 200])), n)  # one minute's datapoints, or many
        back = np.where(rng.integers(0, 10, n) == 0, rng.integers(0, 5 * 60_000, n), 0)
        ts = clock + np.cumsum(step) - back
        clock = int(ts.max())
        batch_fold.fold(a, keys, kid.astype(np.int64), ts.astype(np.int64), vals)
        for k, t, v in zip(kid.tolist(), ts.tolist(), vals.tolist()):
            b.add(keys[k], t, v)
        assert _state(a) == _state(b)
        assert _zero_signs(a) == _zero_signs(b)
    assert [_point(p) for p in a.close_all()] == [_point(p) for p in b.close_all()]


def test_jsonl_lines_of_large_datapoints_are_those_of_the_lists():
    """The JSON Lines sink writes a large datapoint's Values/Counts from numpy arrays
    (orjson OPT_SERIALIZE_NUMPY): the bytes are those of the datum's lists."""
    import orjson

    from castlewatch.model import Datapoint
    from castlewatch.sinks.jsonl import jsonl_lines

    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2**63, 3000, dtype=np.int64).view(np.float64)
    values = [v for v in bits.tolist() if math.isfinite(v)] + [0.0, 1e16, 5e-324, 2.0**53 + 2, 0.1, -1.5e-300]
    for dims in ((), (("A", "x"),)):
        p = Datapoint("ns", "m", dims, "Bytes", T0)
        for i, v in enumerate(values):
            p.add(v, 1 + i % 3)
        p.add(-0.0)
        old = [orjson.dumps({"Namespace": p.namespace, **d}, option=orjson.OPT_APPEND_NEWLINE)
               for d in p.iter_metric_data()]
        assert list(jsonl_lines([p])) == old


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 700), st.sampled_from([2, 30, 66, 200, 3000]), st.booleans(), st.booleans()),
                min_size=1, max_size=5), st.integers(0, 2**32 - 1))
def test_successive_add_blocks_equal_add_one_by_one(blocks, seed):
    """Several blocks in a row into one datapoint (dict, crossing to arrays, arrays), each as
    a list (up to LIST_BLOCK) or an array, zeros of either sign: add()'s values, counts, zero."""
    from castlewatch.model import LIST_BLOCK, Datapoint

    rng = np.random.default_rng(seed)
    a, b = Datapoint("ns", "m", (), "None", T0), Datapoint("ns", "m", (), "None", T0)
    for n, spread, as_list, negative in blocks:
        raw = rng.integers(0, spread, n).astype(np.float64) - spread // 3
        if negative:
            raw[rng.integers(0, 4, n) == 0] = -0.0
        for v in raw.tolist():
            b.add(v)
        form = raw.tolist() if as_list and n <= LIST_BLOCK else raw
        a.add_block(b.sum, n, b.minimum, b.maximum, form)
        assert list(a.items()) == list(b.items()) and a.sample_count == b.sample_count
        assert [math.copysign(1, v) for v, _ in a.items() if v == 0] == [math.copysign(1, v) for v, _ in b.items() if v == 0]
