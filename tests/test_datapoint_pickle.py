"""Datapoint pickled as a tuple of slots, in every state (small dict, arrays
and buffer, tracked via take_changes, restored, absorbed, add_block), then used on."""
from __future__ import annotations

import copy
import pickle
import random

import numpy as np
import pytest

from castlewatch.model import SMALL_VALUES, Datapoint


def _changes(ch):
    full, parts = ch
    return full, [(np.asarray(a, np.float64).tolist(), None if b is None else np.asarray(b).tolist()) for a, b in parts]


def _state(p):
    return (p._key(), p.items(), p.serial, p.saved, p._tracked, p._mark, p._limit, p.distinct_values)


@pytest.mark.parametrize("seed", range(4))
def test_round_trip_in_every_state(seed):
    rng = random.Random(seed)
    for _ in range(40):
        p = Datapoint("ns", "m", (("a", "b"),), "None", 60)
        if rng.random() < 0.3:
            vals = np.unique(np.array([rng.random() for _ in range(rng.choice([3, SMALL_VALUES + 10, 2000]))]))
            p = Datapoint.restored("ns", "m", (("a", "b"),), "None", 60, vals, np.ones(len(vals), np.int64),
                                   (float(len(vals)), len(vals), 0.0, 1.0))
        for _ in range(rng.randint(0, 6)):
            k = rng.random()
            if k < 0.4:
                for _ in range(rng.choice([1, 10, 70, 1500])):
                    p.add(float(rng.randint(0, 3000)), rng.choice([1, 1, 1, 2]))
            elif k < 0.6:
                p.take_changes(everything=rng.random() < 0.3)
            elif k < 0.7:
                p.serial, p.saved = rng.randint(0, 9), ("x", rng.random())
            elif k < 0.8:
                q = Datapoint("ns", "m", (("a", "b"),), "None", 60)
                for _ in range(rng.choice([3, 100])):
                    q.add(float(rng.randint(0, 300)))
                p.absorb(q)
            else:
                raw = np.array([float(rng.randint(0, 3000)) for _ in range(rng.choice([5, 40, 100]))])
                p.add_block(p.sum + float(raw.sum()), len(raw), min(p.minimum, raw.min()), max(p.maximum, raw.max()), raw)
        for protocol in (0, 2, 5):
            r, q = copy.deepcopy(p), pickle.loads(pickle.dumps(p, protocol=protocol))
            assert _state(r) == _state(q)
            for a in [float(rng.randint(0, 3000)) for _ in range(rng.choice([1, 50, 1200]))]:
                r.add(a)
                q.add(a)
            assert _changes(r.take_changes()) == _changes(q.take_changes())
            assert _state(r) == _state(q)
