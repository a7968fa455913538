"""Inputs and outputs must not meet: sinks over sources, sinks sharing a file, overlapping sources.

Checked when a configuration is loaded, before anything is opened (opening a sink
truncates its file), again by :func:`with_sinks_in` for ``--out``, and for the
checkpoint file by :func:`check_checkpoint_path`.  Globs are expanded as the
sources expand them (``~`` expanded, ``**`` recursive, regular files only, a file
known by its device and inode so that links count as the same file); a path a
glob would match once it exists counts too.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from castlewatch.engine.config.model import ConfigError, EngineConfig, SourceConfig
from castlewatch.sinks import SinkSpec


def with_sinks_in(config: EngineConfig, directory: str | os.PathLike) -> EngineConfig:
    """``config`` with every file sink moved into ``directory``, file names kept (``--out DIR``).

    Raises:
        ConfigError: two sinks would then share a file (``a/dp.jsonl`` and
            ``b/dp.jsonl`` both become ``DIR/dp.jsonl``: every datapoint would be
            written twice), or a sink would be a file a source reads.
    """
    directory = Path(directory)
    sinks = [
        s if s.path is None else dataclasses.replace(s, path=str(directory / Path(s.path).name)) for s in config.sinks
    ]

    def fail(location: str, reason: str) -> ConfigError:
        reason = f"{reason} (sinks moved into {directory}, file names kept)"
        return ConfigError(reason, source=config.path, location=location)

    check_paths(config.sources, sinks, fail, before=config.sinks)
    return dataclasses.replace(config, sinks=tuple(sinks))


def check_checkpoint_path(config: EngineConfig, checkpoint: str | os.PathLike) -> None:
    """Refuse a checkpoint file that a source reads or a sink writes (it is rewritten
    every few seconds, so either would destroy or corrupt the other).

    Raises:
        ConfigError: naming the source or sink.
    """
    path = os.path.abspath(checkpoint)
    identity = _file_identity(path)
    for j, source in enumerate(config.sources):
        if source.type != "file" or not source.path:
            continue
        if (identity is not None and identity in _matched_files(source.path)) or glob_would_match(source.path, path):
            raise ConfigError(
                f"the checkpoint file {path} is read by sources[{j}] ({source.path}); put the checkpoint elsewhere",
                source=config.path,
                location="checkpoint",
            )
    for j, sink in enumerate(config.sinks):
        if sink.path is None:
            continue
        other = os.path.abspath(sink.path)
        same_file = identity is not None and identity == _file_identity(other)
        if same_file or os.path.realpath(other) == os.path.realpath(path):
            raise ConfigError(
                f"the checkpoint file {path} is the file of sinks[{j}]; put the checkpoint elsewhere",
                source=config.path,
                location="checkpoint",
            )


def _file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a regular file, or None (missing, unreadable, not a file)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _matched_files(pattern: str) -> dict[tuple[int, int], str]:
    """The regular files a file source's path matches now, as the source finds them
    (``~`` expanded, ``**`` recursive, sorted): identity -> first path."""
    pattern = os.path.expanduser(pattern)
    paths = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
    found: dict[tuple[int, int], str] = {}
    for path in paths:
        identity = _file_identity(path)
        if identity is not None:
            found.setdefault(identity, path)
    return found


def glob_would_match(pattern: str, path: str) -> bool:
    """Whether ``glob.glob(pattern, recursive=True)`` would list ``path`` once it exists.

    Both are absolute; compared component by component as ``glob`` does: ``*``, ``?``
    and ``[...]`` within one component, ``**`` alone for any number of them, and a
    wildcard never matching a name that starts with ``.`` unless the pattern's
    component does.
    """
    pattern = os.path.normpath(os.path.expanduser(pattern))
    path = os.path.normpath(path)
    if not glob.has_magic(pattern):
        return pattern == path
    pat = pattern.split(os.sep)
    parts = path.split(os.sep)

    def hidden(name: str, component: str) -> bool:
        return name.startswith(".") and not component.startswith(".") and glob.has_magic(component)

    def match(i: int, j: int) -> bool:
        if i == len(pat):
            return j == len(parts)
        if pat[i] == "**":
            for k in range(j, len(parts) + 1):  # ** takes parts[j:k]
                if match(i + 1, k):
                    return True
                if k < len(parts) and hidden(parts[k], "*"):
                    return False
            return False
        if j == len(parts) or hidden(parts[j], pat[i]):
            return False
        return fnmatch.fnmatchcase(parts[j], pat[i]) and match(i + 1, j + 1)

    return match(0, 0)


def check_sources_disjoint(sources: list[SourceConfig], fail: Callable[[str, str], ConfigError]) -> None:
    """Refuse two sources of one log group reading one file, two stdin sources, and two
    cloudwatch_logs sources naming one log group.

    Globs are expanded now, as the sources will expand them; a file that appears
    later is not checked (see :mod:`castlewatch.engine.config`); nor are log groups a
    ``log_group_name_prefix`` matches (:func:`~castlewatch.engine.config.resolve_config`
    checks them).
    """
    stdin: int | None = None
    read: dict[tuple[int, int], tuple[int, str]] = {}  # file identity -> (source index, path)
    log_groups: dict[str, int] = {}  # cloudwatch_logs log group -> source index
    for i, source in enumerate(sources):
        where = f"sources[{i}]"
        if source.type == "stdin":
            if stdin is not None:
                raise fail(where, f"stdin is already read by sources[{stdin}]; only one source can read it")
            stdin = i
            continue
        if source.type == "cloudwatch_logs":
            for j, name in enumerate(source.log_group_names):
                if name in log_groups:
                    raise fail(
                        f"{where}.log_group_names[{j}]",
                        f"log group {name!r} is already read by sources[{log_groups[name]}]: each of its events "
                        "would be counted twice; remove one",
                    )
                log_groups[name] = i
            continue
        assert source.path is not None
        for j, other in enumerate(sources[:i]):
            if other.type == "file" and other.log_group == source.log_group and _same_path(other.path, source.path):
                raise fail(
                    f"{where}.path",
                    f"the same path as sources[{j}] in log group {source.log_group!r}: "
                    "each event would be counted twice; remove one",
                )
        for identity, path in _matched_files(source.path).items():
            first = read.get(identity)
            if first is not None and sources[first[0]].log_group == source.log_group:
                j, other_path = first
                same = path if path == other_path else f"{path} (also {other_path})"
                raise fail(
                    f"{where}.path",
                    f"{same} is matched by sources[{j}] ({sources[j].path}) too, in the same log group "
                    f"{source.log_group!r}: each of its events would be counted twice; narrow one of the paths",
                )
            read.setdefault(identity, (i, path))


def _same_path(a: str | None, b: str | None) -> bool:
    """Whether two source paths (or globs) are written alike, once normalised."""
    return os.path.normpath(os.path.expanduser(a or "")) == os.path.normpath(os.path.expanduser(b or ""))


def check_paths(
    sources: Sequence[SourceConfig],
    sinks: Sequence[SinkSpec],
    fail: Callable[[str, str], ConfigError],
    before: Sequence[SinkSpec] | None = None,
) -> None:
    """Refuse a sink that is a file a source reads, and two sinks sharing a file.

    Checked before anything is opened (opening a sink truncates its file). A sink is
    an input when it is a file a source's path matches now (symbolic and hard links
    included), or a path the source's glob would match once it exists.  ``before``:
    the sinks as configured, when ``sinks`` moved them (``--out``), to name them.
    """
    shown = before if before is not None else sinks
    taken: dict[Any, int] = {}
    matched = [(_matched_files(s.path) if s.type == "file" and s.path else {}) for s in sources]
    for i, sink in enumerate(sinks):
        if sink.path is None:
            continue
        where = f"sinks[{i}].path"
        path = os.path.abspath(sink.path)
        identity = _file_identity(path)
        for j, source in enumerate(sources):
            if source.type != "file" or not source.path:
                continue
            if (identity is not None and identity in matched[j]) or any(
                glob_would_match(source.path, p) for p in {path, os.path.realpath(path)}
            ):
                raise fail(
                    where,
                    f"{path} is read by sources[{j}] ({source.path}): opening the sink would destroy that input "
                    "(and a followed source would read the datapoints back); write the datapoints elsewhere",
                )
        for key in {os.path.realpath(path), identity} - {None}:
            if key in taken:
                j = taken[key]
                if before is None:
                    what = f"the same file as sinks[{j}] ({path})"
                else:
                    what = f"{shown[i].path} and sinks[{j}] ({shown[j].path}) would both be {path}"
                raise fail(where, f"{what}: every datapoint would be written to it twice; give each sink its own file")
            taken[key] = i

