"""The C reading of JSON event times (:func:`castlewatch.engine.batch.blocks.json_times`,
``castlewatch/grammar/_json_time.c``): a message it decides is one JSON object for the
general evaluator's decoder, and the time it gives is the one the general evaluator reads
(``iso8601_ms`` of the top-level key, none for null or absent); anything else it leaves
undecided. Hypothesis-generated documents, valid and broken."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castlewatch.engine.batch import blocks
from castlewatch.engine.batch.plan import NO_TIME
from castlewatch.grammar import literals
from castlewatch.grammar.compiler import decode_json_event
from castlewatch.model import iso8601_ms

pytestmark = pytest.mark.skipif("c" not in literals.AVAILABLE, reason="the C extension is not built")

TIMES = ["2024-03-05T09:00:00Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
         "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2024-03-05T09:00:00.5Z", "2024-03-05 09:00:00",
         "0000-01-01T00:00:00Z", "2024-13-01T00:00:00Z", "", "caf\u00e9", "2024-03-05T09:00:60Z"]
exact = st.builds("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format, st.integers(0, 9999), st.integers(0, 13),
                  st.integers(0, 31), st.integers(0, 24), st.integers(0, 60), st.integers(0, 60))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(st.characters(max_codepoint=0xFF), max_size=8), st.text(max_size=4),
                    st.sampled_from(TIMES))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["a", "eventTime", "b\u00e9", "c"]), inner, max_size=4)),
    max_leaves=12)


@st.composite
def messages(draw) -> str:
    body = draw(st.dictionaries(st.sampled_from(["a", "b", "c", "eventName"]), documents, max_size=4))
    items = list(body.items())
    times = draw(st.lists(st.one_of(exact, exact, st.sampled_from(TIMES), st.none(), st.integers(0, 5)), max_size=2))
    for t in times:  # zero, one or two eventTime keys, anywhere
        items.insert(draw(st.integers(0, len(items))), ("eventTime", t))
    item_sep, key_sep = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\t", " :\r\n")]))
    text = "{" + item_sep.join(json.dumps(k) + key_sep + json.dumps(v, ensure_ascii=draw(st.booleans()))
                               for k, v in items) + "}"
    text = draw(st.sampled_from(["", " ", "\t\n"])) + text + draw(st.sampled_from(["", " ", "\r\n"]))
    edit = draw(st.sampled_from(["none"] * 4 + ["insert", "delete", "replace"]))
    if edit != "none" and text:
        at = draw(st.integers(0, len(text) - 1))
        char = draw(st.sampled_from(list('{}[]",:.-+eE0 \\/\x01\x7fnulltrue')))
        text = {"insert": text[:at] + char + text[at:], "delete": text[:at] + text[at + 1:],
                "replace": text[:at] + char + text[at + 1:]}[edit]
    return text


def _reference(message: str) -> int | None | str:
    """What the general evaluator reads: the time, None (no time), or "not json"."""
    doc = decode_json_event(message)
    if doc is None:
        return "not json"
    value = doc.get("eventTime")
    return iso8601_ms(value) if isinstance(value, str) else None


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # the backend is kept
@given(batch=st.lists(messages(), min_size=1, max_size=30))
def test_what_it_decides_is_what_the_general_evaluator_reads(batch, literal_backend):
    if literal_backend != "c":
        assert blocks.json_times(batch, np.arange(len(batch)), "eventTime") is None
        return
    got = blocks.json_times(batch, np.arange(len(batch)), "eventTime")
    for message, time in zip(batch, got.tolist()):
        if time == blocks.UNDECIDED_TIME:
            continue
        expected = _reference(message)
        assert expected != "not json", message
        assert (None if time == NO_TIME else time) == expected, message


@pytest.mark.parametrize("message, expected", [
    ('{"eventTime":"2024-03-05T09:00:00Z"}', 1709629200000),
    (' {"a":[1,-0.5e-3,{"b":null}],"eventTime" : "1970-01-01T00:00:01Z" }\r\n', 1000),
    ('{"a":"caf\u00e9"}', NO_TIME), ('{"eventTime":null}', NO_TIME),
    # orjson refuses these numbers; the general path's standard-library decoder keeps them as text
    ('{"n":' + "9" * 5000 + ',"m":-1.5e-99999,"eventTime":"2024-03-05T09:00:00Z"}', 1709629200000),
    ('{"x":{"eventTime":"2024-03-05T09:00:00Z"}}', NO_TIME),
    ('{"eventTime":"2024-03-05T09:00:00.5Z"}', "undecided"),  # another form: msgspec and iso8601_ms read it
    ('{"eventTime":"a","eventTime":null}', "undecided"), ('{"eventTime":5}', "undecided"),
    ('{"eventTime":"2024-03-05T09:00:00Z","s":"\\u0041"}', "undecided"), ('{"a":1,}', "undecided"),
    ('{"a":' + "[" * 300 + "]" * 300 + "}", "undecided"), ('{"a":"snow \u2603"}', "undecided"),
    ('{"eventTime":"2024-03-05T09:00:00Z"} {}', "undecided"), ("[1]", "undecided"), ("", "undecided"),
])
def test_examples(message, expected, literal_backend):
    if literal_backend != "c":
        pytest.skip("the C reading only")
    [got] = blocks.json_times([message], np.array([0]), "eventTime").tolist()
    assert got == (blocks.UNDECIDED_TIME if expected == "undecided" else expected)


latin1 = st.text(st.characters(max_codepoint=0xFF, exclude_characters="\\"), max_size=10)
plain_documents = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False),
              latin1),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(latin1, inner, max_size=4)), max_leaves=15)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=st.dictionaries(latin1.filter(lambda k: k != "eventTime"), plain_documents, max_size=6),
       when=st.datetimes(), separators=st.sampled_from([(",", ":"), (", ", ": ")]))
def test_a_plain_record_is_decided(record, when, separators, literal_backend):
    """A record of Latin-1 text without control characters, with its time in CloudTrail's
    form, is decided (the fast path takes it), and its time is the general evaluator's."""
    if literal_backend != "c":
        return
    record = {**record, "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    message = json.dumps(record, ensure_ascii=False, separators=separators)
    [got] = blocks.json_times([message], np.array([0]), "eventTime").tolist()
    if "\\u" in message or len(when.strftime("%Y")) != 4:  # control characters escaped; 3-digit years
        return
    assert got == _reference(message)
