"""How the ``castlewatch`` program ends (:mod:`castlewatch.cli.program`): after a command
that closed what it wrote (``replay``), without the interpreter's teardown, but with the
``atexit`` functions run, stdout and stderr flushed and the exit status kept; otherwise
as ``sys.exit`` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys, threading, time
from castlewatch.cli import program
atexit.register(lambda: print("atexit ran", file=sys.stderr))
if {declare}:
    program.may_end_at_once()
if {thread}:
    threading.Thread(target=lambda: (time.sleep(0.3), print("thread done", flush=True))).start()
sys.stdout.write("buffered, not flushed")
program.end({code!r})
"""


@pytest.mark.parametrize("declare", [True, False])
@pytest.mark.parametrize("code, status, message", [(0, 0, ""), (3, 3, ""), (None, 0, ""),
                                                   ("Error: it failed", 1, "Error: it failed\n")])
def test_the_status_output_and_atexit_functions_are_kept(declare, code, status, message):
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(declare=declare, thread=False, code=code)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == status
    assert done.stdout == "buffered, not flushed"
    assert sorted(done.stderr.splitlines(keepends=True)) == sorted(["atexit ran\n"] + ([message] if message else []))


def test_another_thread_still_running_is_waited_for():
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(declare=True, thread=True, code=0)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "thread done" in done.stdout and done.stderr == "atexit ran\n"


def test_a_replay_through_python_m_writes_everything(tmp_path):
    """``python -m castlewatch replay`` ends at once: its datapoints on stdout (a stdout
    sink) and in its file sink are complete, its summary printed."""
    log = tmp_path / "app.log"
    log.write_text("".join(f"2024-03-05T09:{m:02d}:00Z ERROR n={m}\n" for m in range(30)), encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "metric_filters": [{"filterName": "errors", "filterPattern": "ERROR", "logGroupName": "app",
                            "metricTransformations": [{"metricName": "Errors", "metricNamespace": "App",
                                                       "metricValue": "1"}]}],
        "sources": [{"type": "file", "path": str(log), "log_group": "app",
                     "timestamp": {"field": "$1", "format": "iso8601"}}],
        "sinks": [{"type": "stdout"}, {"type": "jsonl", "path": str(tmp_path / "out.jsonl")}],
    }), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "castlewatch", "replay", "--config", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 30 and all(json.loads(line)["MetricName"] == "Errors" for line in lines)
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines() == lines
    assert "matched: errors" in done.stderr and "30" in done.stderr


def test_the_program_starts_no_blas_threads():
    """castlewatch does no linear algebra: the program asks OpenBLAS for one thread (unless the
    environment says otherwise), before numpy is loaded."""
    code = ("import os, sys; from castlewatch.cli import program\n"
            "sys.argv = ['castlewatch', '--version']\n"
            "import atexit; atexit.register(lambda: print(os.environ.get('OPENBLAS_NUM_THREADS'), 'numpy' in sys.modules))\n"
            "program.run()")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1 False"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**env, "OPENBLAS_NUM_THREADS": "4"})
    assert done.stdout.splitlines()[-1] == "4 False"


SETTING_UP = """
import gc, json, sys
from castlewatch.cli import program
seen = {}
before = len(gc.get_objects())
with program.setting_up():
    seen["inside"] = gc.isenabled()
    with program.setting_up():
        seen["nested"] = gc.isenabled()
    seen["after nested"] = gc.isenabled()
    kept = [[i] for i in range(1000)]  # lives as long as the process: frozen
seen["after"] = gc.isenabled()
seen["frozen"] = gc.get_freeze_count() >= 1000
try:
    with program.setting_up():
        raise KeyError("x")
except KeyError:
    seen["after an error"] = gc.isenabled()
gc.disable()
with program.setting_up():
    pass
seen["left disabled"] = not gc.isenabled()
print(json.dumps(seen))
"""


def test_setting_up_runs_without_the_collector_and_restores_it():
    done = subprocess.run([sys.executable, "-c", SETTING_UP], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"inside": False, "nested": False, "after nested": False, "after": True,
                                       "frozen": True, "after an error": True, "left disabled": True}


def test_the_program_imports_its_command_line_under_setting_up():
    """``python -m castlewatch`` reaches ``run()`` before the command line's imports: the
    package and ``castlewatch.cli`` import nothing heavy themselves."""
    code = ("import sys; import castlewatch.cli.program; "
            "print(sorted(m for m in ('castlewatch.grammar', 'castlewatch.cli.commands', 'click') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
