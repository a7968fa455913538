"""Adversarial tests of the tree cache (castlewatch.grammar.tree_cache): odd patterns, and
processes writing the cache at once, give exactly what a process without a cache gives
(trees, errors with their message, column and expectation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = r"""
import json, sys
from castlewatch.grammar.parser import parse
from castlewatch.grammar.errors import FilterPatternError
out = []
for p in json.loads(sys.stdin.read()):
    try:
        out.append(["ok", repr(parse(p))])
    except FilterPatternError as e:
        out.append(["err", str(e), sorted((k, str(v)) for k, v in vars(e).items())])
print(json.dumps(out))
"""

N = 500
PATTERNS = [
    "{ " + "(" * N + "$.a = 1" + ")" * N + " }",  # as deep as 1,024 characters allow
    "{ " + " || ".join(["$.a = 1"] * 120) + " }",
    "[" + ", ".join(f"f{i}" for i in range(200)) + "]",
    "{ $.a = %x% || $.b = %y% || $.c = %z% }",  # parses, then a quota refuses it
    "{ $.a[*].b = 1 && $.c[*] = 2 && $.d[*] = 3 && $.e[*] = 4 }",
    "\ud800", '{ $.a = "\ud800" }', "caf\u00e9", "\x00", "[a, a]", "[a, b", "{ $.a = }", "{ $.a IS NOT NULL }",
    '?"abc def', '""', "-", "%abc", "{ $.a = 1 } ", " { $.a = 1 }", "{ $.a = 1 }", "[w1=%a%, w2=%b%, w3=%c%]",
    "{ $.a = -0 }", "{ $.a = 1e400 }", '{ $.a = "\\u00e9" }', "[...]", "[..., ...]", "a" * 1024, "a" * 1025,
    "{ $.a = " + "9" * 1000 + " }", "[a=-0, b=1e-400, c=*x*]", "{ $.a = \"x\" &&& $.b = 1 }",
]


def _run(cache: str, patterns: list[str]) -> list:
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    done = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps(patterns), capture_output=True, text=True,
                          env=env, check=True)
    return json.loads(done.stdout)


def test_odd_patterns_parse_and_fail_the_same_from_the_cache(tmp_path: Path) -> None:
    want = _run("relative/no-cache", PATTERNS)
    assert _run(str(tmp_path), PATTERNS) == want  # writes the cache
    assert _run(str(tmp_path), PATTERNS) == want  # reads it
    assert _run(str(tmp_path), PATTERNS[::-1]) == want[::-1]


def test_processes_writing_the_cache_at_once(tmp_path: Path) -> None:
    groups = [PATTERNS[i::4] + [f"{{ $.k{i}{j} = {j} }}" for j in range(80)] for i in range(4)]
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", PROBE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                              text=True) for _ in groups]
    outs = [p.communicate(json.dumps(g))[0] for p, g in zip(procs, groups)]
    assert all(p.returncode == 0 for p in procs)
    everything = [p for g in groups for p in g]
    want = _run("relative/no-cache", everything)
    assert [r for out in outs for r in json.loads(out)] == want
    assert _run(str(tmp_path), everything) == want
    files = sorted(f.name for f in (tmp_path / "castlewatch").iterdir())
    assert not [f for f in files if f.startswith(".patterns-")], files  # no temporary file left behind
