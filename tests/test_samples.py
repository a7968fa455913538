"""The bundled sample logs (castlewatch.samples)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from castlewatch.samples import DESCRIPTIONS, UnknownSampleError, read_sample_lines, sample_names, sample_path

# Line counts from castlewatch/data/samples/README.md.
LINE_COUNTS = {
    "apigw-access": 24,
    "apigw-access-clf": 24,
    "app-json": 32,
    "cloudtrail": 40,
    "lambda": 26,
    "vpc-flow": 55,
    "vpc-flow-custom": 22,
}


def test_sample_names() -> None:
    assert sample_names() == sorted(LINE_COUNTS)


def test_every_sample_is_described() -> None:
    assert sorted(DESCRIPTIONS) == sample_names()


@pytest.mark.parametrize("name", sorted(LINE_COUNTS))
def test_read_sample_lines(name: str) -> None:
    lines = read_sample_lines(name)
    assert len(lines) == LINE_COUNTS[name]
    assert all(line and "\n" not in line and not line.endswith("\r") for line in lines)
    assert sample_path(name).read_text(encoding="utf-8").count("\n") == len(lines)


def test_lambda_lines_keep_their_tabs() -> None:
    assert any(line.endswith("\t") for line in read_sample_lines("lambda"))


def test_unknown_sample_lists_the_valid_names() -> None:
    with pytest.raises(UnknownSampleError) as raised:
        read_sample_lines("cloudtrail.jsonl")
    assert str(raised.value) == (
        "unknown sample 'cloudtrail.jsonl' (did you mean 'cloudtrail'?); choose one of: "
        + ", ".join(sorted(LINE_COUNTS))
    )
    assert raised.value.suggestions == ["cloudtrail"]


def test_unknown_sample_suggestions() -> None:
    """Names the unknown one begins (vpc: both VPC samples), then close ones (a typo)."""
    for name, suggestions in [("lamda", ["lambda"]), ("LAMBDA", ["lambda"]), ("vpc", ["vpc-flow", "vpc-flow-custom"]), ("xyz", [])]:
        with pytest.raises(UnknownSampleError) as raised:
            sample_path(name)
        assert raised.value.suggestions == suggestions


def test_every_sample_has_its_provenance_and_licence() -> None:
    """The samples README's licence table names every bundled file, and nothing else."""
    readme = (sample_path("lambda").parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Licence of each sample", 1)[1].split("\n## ", 1)[0]
    files = [line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")]
    assert sorted(files) == sorted(sample_path(name).name for name in sample_names())


def test_project_licence_is_apache_2() -> None:
    """LICENSE holds the Apache License 2.0 and pyproject.toml declares it (SPDX)."""
    root = Path(__file__).resolve().parent.parent
    text = (root / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
