"""The Lark parser's analysed grammar is cached in the user's cache directory between
processes (:func:`castlewatch.grammar.parser._cache_file`): a fresh process writes it, the
next loads it, and a cache that cannot be written or read never stops a pattern compiling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = ("from castlewatch.grammar import compile_pattern; "
         "print(compile_pattern('{ $.eventName = \"ConsoleLogin\" }').matches('{\"eventName\":\"ConsoleLogin\"}'))")


def _run(env_cache: str) -> str:
    env = dict(os.environ, XDG_CACHE_HOME=env_cache)
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, check=True)
    assert done.stderr == ""
    return done.stdout.strip()


def test_a_fresh_process_writes_the_cache_and_the_next_one_reads_it(tmp_path: Path) -> None:
    assert _run(str(tmp_path)) == "True"
    (cache,) = (tmp_path / "castlewatch").iterdir()
    assert cache.name.startswith("filter_pattern.lark-")
    stamp = cache.stat().st_mtime_ns
    assert _run(str(tmp_path)) == "True"
    assert cache.stat().st_mtime_ns == stamp  # loaded, not written again


@pytest.mark.parametrize("damage", ["garbage", "unwritable", "relative"])
def test_a_damaged_or_unusable_cache_still_compiles(tmp_path: Path, damage: str) -> None:
    if damage == "garbage":
        assert _run(str(tmp_path)) == "True"
        (cache,) = (tmp_path / "castlewatch").iterdir()
        cache.write_bytes(b"not a cache\n\x80\x04garbage")
        where = str(tmp_path)
    elif damage == "unwritable":
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        where = str(blocker)  # the cache folder cannot be made under a file
    else:
        where = "relative/dir"  # not absolute: ignored, no cache
    assert _run(where) == "True"
