"""The C speedups (``castlewatch.grammar._speedups``) against their pure-Python twins.

The pattern tests run on both backends through the ``literal_backend`` fixture; here the
two hot functions are compared directly, on the inputs where a C scan goes wrong: block
boundaries, Latin-1 and wider strings, literals longer than the message, separators
that ``str.split`` knows and the pattern language does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import castlewatch
import castlewatch.grammar
from castlewatch.grammar import literals
from castlewatch.grammar.compiler import _FIELD

needs_c = pytest.mark.skipif("c" not in literals.AVAILABLE, reason="castlewatch.grammar._speedups is not built")


def test_extension_is_built() -> None:
    """CI has a C compiler, so the optional extension must be there (a failed build only warns)."""
    assert "c" in literals.AVAILABLE, (
        "castlewatch.grammar._speedups did not build: reinstall with `pip install -v -e .` "
        "and read the compiler's error"
    )


def reference(required: tuple, excluded: tuple, optional: tuple, message: str) -> bool:
    return (
        all(t in message for t in required)
        and not any(t in message for t in excluded)
        and (not optional or any(t in message for t in optional))
    )


# Alphabets that reach every string representation of CPython: ASCII, Latin-1 (1 byte,
# not ASCII), BMP (2 bytes) and astral (4 bytes) code points.
ALPHABET = st.sampled_from(list('ab "[]\t\x1c\x1f\x00\xe9\xff') + ["\u0100", "\u20ac", "\U0001f600", "ERROR"])
TEXT = st.lists(ALPHABET, max_size=80).map("".join)
LITERAL = st.lists(ALPHABET, min_size=1, max_size=6).map("".join)


@needs_c
@settings(max_examples=1500, deadline=None)
@given(
    message=TEXT,
    required=st.lists(LITERAL, max_size=3),
    excluded=st.lists(LITERAL, max_size=3),
    optional=st.lists(LITERAL, max_size=3),
    cut=st.data(),
)
def test_c_literals_agree_with_python(message, required, excluded, optional, cut) -> None:
    # also look for pieces of the message itself, so that matches are common
    if message:
        i = cut.draw(st.integers(0, len(message) - 1))
        j = cut.draw(st.integers(i + 1, len(message)))
        required = required + [message[i:j]]
    r, x, o = tuple(required), tuple(excluded), tuple(optional)
    expected = reference(r, x, o, message)
    assert literals._speedups.Literals(r, x, o)(message) is expected
    assert literals.python_literals(r, x, o)(message) is expected


@needs_c
@pytest.mark.parametrize("size", [1, 2, 3, 5, 16, 17, 31])
def test_c_literals_at_every_offset(size: int) -> None:
    """The literal at every position of messages around the 16-byte block size, in
    1-byte, 2-byte and 4-byte strings, and a near miss (last character wrong)."""
    needle = "".join(chr(ord("A") + i % 26) for i in range(size))
    near = needle[:-1] + "z"
    for wide in ("", "\u20ac", "\U0001f600"):
        for length in range(size, size + 40):
            for at in range(length - size + 1):
                message = "x" * at + needle + "y" * (length - size - at) + wide
                assert literals._speedups.Literals((needle,), (), ())(message) is True, (message, needle)
                missed = "x" * at + near + "y" * (length - size - at) + wide
                assert literals._speedups.Literals((needle,), (), ())(missed) is False, (missed, needle)


@needs_c
def test_c_literals_mixed_representations() -> None:
    scan = literals._speedups.Literals
    assert scan(("\u20ac",), (), ())("price: 5 \u20ac") is True
    assert scan(("\u20ac",), (), ())("price: 5 EUR") is False  # 2-byte literal, 1-byte message
    assert scan(("caf\xe9",), (), ())("un caf\xe9") is True  # Latin-1 in both
    assert scan(("caf\xe9",), (), ())("un caf\xe9 \u20ac") is True  # 1-byte literal, 2-byte message
    assert scan(("",), (), ())("") is True  # the empty string is in every string
    assert scan((), (), ())("anything") is True
    assert scan((), (), ("a", "b"))("ccc") is False


@needs_c
def test_c_literals_errors() -> None:
    scan = literals._speedups.Literals(("a",), (), ())
    with pytest.raises(TypeError, match="must be str, not bytes"):
        scan(b"a")
    with pytest.raises(TypeError, match="exactly one argument"):
        scan("a", "b")
    with pytest.raises(TypeError, match="required literals must be str, not int"):
        literals._speedups.Literals(("a", 1), (), ())
    with pytest.raises(TypeError):
        literals._speedups.Literals(["a"], (), ())
    assert repr(scan) == "<castlewatch Literals: 1 required, 0 excluded, 0 optional>"


def reference_split(message: str) -> list[str]:
    """§6.2 by the general regex: quoted and bracketed fields lose their delimiters."""
    return [a or b or c for a, b, c in _FIELD.findall(message)]


@settings(max_examples=1500, deadline=None)
@given(message=st.lists(st.sampled_from(list(' \t\n\r\x0b\x0cab"[]\x1c\x1d\x1e\x1f\x85\xa0\xe9\u2003'))).map("".join))
def test_plain_split_is_exact_or_declines(message: str) -> None:
    for name in literals.AVAILABLE:
        split = literals._speedups.plain_split if name == "c" else literals.python_plain_split
        fields = split(message)
        if fields is not None:
            assert fields == reference_split(message), name
    if "c" in literals.AVAILABLE:
        assert literals._speedups.plain_split(message) == literals.python_plain_split(message)


@settings(max_examples=1500, deadline=None)
@given(message=st.lists(st.sampled_from(list(' \t\n\r\x0b\x0cab"[]\x1c\x1d\x1e\x1f\x85\xa0\xe9\u2003'))).map("".join),
       index=st.integers(0, 6))
def test_plain_field_is_one_field_of_plain_split(message: str, index: int) -> None:
    """plain_field gives the field count and the one field a single-condition pattern
    tests, exactly where plain_split gives the list, on both backends."""
    fields = literals.python_plain_split(message)
    want = None if fields is None else (len(fields), fields[index] if index < len(fields) else None)
    assert literals.python_plain_field(message, index) == want
    if "c" in literals.AVAILABLE:
        assert literals._speedups.plain_field(message, index) == want


@pytest.mark.usefixtures("literal_backend")
def test_split_fields_on_each_backend() -> None:
    split = castlewatch.grammar.split_fields
    assert split('127.0.0.1 - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200') == [
        "127.0.0.1",
        "-",
        "10/Oct/2000:13:55:36 -0700",
        "GET / HTTP/1.0",
        "200",
    ]
    assert split("a\x1cb c") == ["a\x1cb", "c"]  # \x1c is not a separator here, unlike str.split
    assert split("caf\xe9\xa0ok") == ["caf\xe9\xa0ok"]  # nor NBSP


def test_use_backend() -> None:
    before = literals.backend()
    try:
        literals.use_backend("python")
        assert literals.backend() == "python"
        assert isinstance(castlewatch.compile_pattern("ERROR").matches, types.FunctionType)
        if "c" in literals.AVAILABLE:
            literals.use_backend("c")
            assert isinstance(castlewatch.compile_pattern("ERROR").matches, literals._speedups.Literals)
        assert castlewatch.compile_pattern("?ERROR ?FATAL").matches("a FATAL b") is True
        with pytest.raises(ValueError, match="no 'fortran' backend here"):
            literals.use_backend("fortran")
    finally:
        literals.use_backend(before)


def test_pure_python_by_environment() -> None:
    """``CASTLEWATCH_PURE_PYTHON=1`` starts on the Python backend, as the README says."""
    code = "from castlewatch.grammar import literals; print(literals.backend())"
    env = {**os.environ, "CASTLEWATCH_PURE_PYTHON": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "python"
    default = "c" if "c" in literals.AVAILABLE else "python"
    for off in ("0", "false", "", None):
        if off is None:
            env.pop("CASTLEWATCH_PURE_PYTHON")
        else:
            env["CASTLEWATCH_PURE_PYTHON"] = off
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert done.stdout.strip() == default, off


def test_version_names_the_backend() -> None:
    from click.testing import CliRunner

    from castlewatch.cli import main

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"castlewatch {castlewatch.__version__} (matcher backend: {literals.backend()})\n"


@needs_c
def test_c_literals_long_and_repetitive() -> None:
    """Literals over 64 characters take CPython's linear search; both paths give ``in``."""
    for size in (63, 64, 65, 200):
        literal = "a" * (size - 2) + "ba"
        message = "a" * 5000
        scan = literals._speedups.Literals((literal,), (), ())
        assert scan(message) is False
        assert scan(message + literal) is True
        assert scan(message[:100] + literal + message) is True
        assert scan(message + literal[:-1]) is False


@needs_c
def test_c_literals_copy_str_subclasses() -> None:
    """A str-subclass literal is copied, so it cannot make an uncollectable cycle."""
    import gc
    import weakref

    class Text(str):
        pass

    text = Text("needle")
    scan = literals._speedups.Literals((text,), (), ())
    text.back = scan  # text -> scan would be a cycle if scan kept the subclass instance
    ref = weakref.ref(text)
    del text, scan
    gc.collect()
    assert ref() is None
