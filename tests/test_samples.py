"""The bundled sample logs (castlewatch.samples)."""

from __future__ import annotations

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
    for name, suggestions in [("lamda", ["lambda"]), ("vpc", ["vpc-flow", "vpc-flow-custom"]), ("xyz", [])]:
        with pytest.raises(UnknownSampleError) as raised:
            sample_path(name)
        assert raised.value.suggestions == suggestions
