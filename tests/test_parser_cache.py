"""The Lark parser's analysed grammar (:func:`castlewatch.grammar.lalr._cache_file`) and the
trees of the patterns parsed (:mod:`castlewatch.grammar.tree_cache`) are cached in the user's
cache directory between processes: a fresh process writes them, the next loads them (and
does not import Lark), and a cache that cannot be written or read never stops a pattern
compiling, nor changes what it matches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = ("import sys; from castlewatch.grammar import compile_pattern; "
         "print(compile_pattern('{ $.eventName = \"ConsoleLogin\" }').matches('{\"eventName\":\"ConsoleLogin\"}'),"
         " 'lark' in sys.modules)")


def _run(env_cache: str) -> str:
    env = dict(os.environ, XDG_CACHE_HOME=env_cache)
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, check=True)
    assert done.stderr == ""
    return done.stdout.strip()


def test_a_fresh_process_writes_the_cache_and_the_next_one_reads_it(tmp_path: Path) -> None:
    assert _run(str(tmp_path)) == "True True"  # parsed with Lark
    tables, trees = sorted((tmp_path / "castlewatch").iterdir())
    assert tables.name.startswith("filter_pattern.lark-") and trees.name.startswith("patterns-")
    stamps = tables.stat().st_mtime_ns, trees.stat().st_mtime_ns
    assert _run(str(tmp_path)) == "True False"  # the tree from the cache: Lark not imported
    assert (tables.stat().st_mtime_ns, trees.stat().st_mtime_ns) == stamps  # loaded, not written again


@pytest.mark.parametrize("damage", ["garbage", "unwritable", "relative"])
def test_a_damaged_or_unusable_cache_still_compiles(tmp_path: Path, damage: str) -> None:
    if damage == "garbage":
        assert _run(str(tmp_path)) == "True True"
        for cache in (tmp_path / "castlewatch").iterdir():
            cache.write_bytes(b"not a cache\n\x80\x04garbage")
        where = str(tmp_path)
    elif damage == "unwritable":
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        where = str(blocker)  # the cache folder cannot be made under a file
    else:
        where = "relative/dir"  # not absolute: ignored, no cache
    assert _run(where) == "True True"


def test_the_tree_cache_file_is_per_version_and_sources(tmp_path: Path, monkeypatch) -> None:
    """Another castlewatch version (or an edited parser) reads another file: never a tree
    another parser made."""
    import castlewatch
    from castlewatch.grammar import tree_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = tree_cache._path()
    monkeypatch.setattr(castlewatch, "__version__", castlewatch.__version__ + ".post1")
    assert tree_cache._path() != first and Path(first).parent == Path(tree_cache._path()).parent


def test_every_pattern_compiles_the_same_from_the_tree_cache(tmp_path: Path) -> None:
    """The conformance patterns and the CIS pack, compiled in a process that caches their
    trees and again in one that reads them: the same ASTs (pickled trees compare equal)."""
    code = (
        "import json, pickle, sys; from pathlib import Path; from castlewatch.grammar.parser import parse\n"
        "from castlewatch.grammar.errors import FilterPatternError\n"
        "cases = json.loads(Path(sys.argv[1]).read_text())\n"
        "out = {}\n"
        "for p in cases:\n"
        "    try: out[p] = parse(p)\n"
        "    except FilterPatternError as e: out[p] = str(e)\n"
        "sys.stdout.buffer.write(pickle.dumps((out, 'lark' in sys.modules)))\n"
    )
    import json

    root = Path(__file__).resolve().parent
    with open(root / "conformance" / "cases.jsonl", encoding="utf-8") as fh:
        patterns = sorted({json.loads(line)["pattern"] for line in fh if line.strip()}
                          | {"{ $.a = 1 }", "[a, b = x*]", "bad {", "%a%", "{ $.a = 1 } x"})
    listing = tmp_path / "patterns.json"
    listing.write_text(json.dumps(patterns))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    import pickle

    runs = [pickle.loads(subprocess.run([sys.executable, "-c", code, str(listing)], capture_output=True,
                                        env=env, check=True).stdout) for _ in range(2)]
    assert runs[0][1] is True
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) > 20


def test_the_selector_regexp_is_the_grammars() -> None:
    """``parse_selector`` tests its text with a copy of the grammar's SELECTOR terminal."""
    from castlewatch.grammar import lalr, parser

    assert parser.SELECTOR_PATTERN == lalr.selector_regexp()


def test_a_run_keeps_its_own_trees_first(tmp_path: Path, monkeypatch) -> None:
    """A full cache file still gets this process's patterns (the oldest others make room),
    and holds at most MAX_PATTERNS."""
    from castlewatch.grammar import parser, tree_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(tree_cache, "MAX_PATTERNS", 4)
    for old in ("a", "b", "c", "d"):
        monkeypatch.setattr(tree_cache, "_trees", None)
        monkeypatch.setattr(tree_cache, "_used", {})
        parser.parse(old)
        tree_cache.save()
    monkeypatch.setattr(tree_cache, "_trees", None)
    monkeypatch.setattr(tree_cache, "_used", {})
    assert tree_cache.get("a") is not None and tree_cache.get("d") is not None
    parser.parse("{ $.new = 1 }")
    tree_cache.save()
    monkeypatch.setattr(tree_cache, "_trees", None)
    kept = tree_cache._load()
    assert len(kept) == 4 and {"a", "d", "{ $.new = 1 }"} <= set(kept)
    assert kept["{ $.new = 1 }"] == parser.parse("{ $.new = 1 }")


def test_parse_uncached_runs_the_parser(monkeypatch) -> None:
    """``parse(p, cached=False)`` (what the bench times as compile) never takes a kept tree."""
    from castlewatch.grammar import parser, tree_cache

    tree = parser.parse("{ $.eventName = x }")

    def refuse(pattern):
        raise AssertionError("the tree cache was consulted")

    monkeypatch.setattr(tree_cache, "get", refuse)
    assert parser.parse("{ $.eventName = x }", cached=False) == tree
