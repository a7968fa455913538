"""The sample logs bundled with castlewatch (``castlewatch/data/samples/``).

Each sample is one file of log event messages, one per line; its name is the file
stem (``cloudtrail`` for ``cloudtrail.jsonl``). The README in that folder tells
where every line comes from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from castlewatch.events import split_lines

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

DESCRIPTIONS = {
    "apigw-access": "API Gateway access logs, JSON template (status is a string)",
    "apigw-access-clf": "API Gateway access logs, Common Log Format template",
    "app-json": "structured application logs: nested objects, arrays, nulls, numbers",
    "cloudtrail": "CloudTrail records: console sign-ins, root use, IAM/VPC/S3/KMS changes",
    "lambda": "Lambda runtime lines: START/END/REPORT, tab-separated app logs, JSON logs",
    "vpc-flow": "VPC flow logs, default version 2 format (14 fields)",
    "vpc-flow-custom": "VPC flow logs, custom 21-field format with TCP flags",
}
"""One line describing each sample, by name (every bundled sample has one: the command
line's help lists these names without looking at the files, a start-up cost)."""


class UnknownSampleError(LookupError):
    """Raised for a sample name that is not bundled; the message suggests the names it
    begins or is close to (``did you mean 'lambda'?``, by :func:`difflib.get_close_matches`)
    and lists the valid ones.

    Attributes:
        name: the name asked for.
        suggestions: up to 3 bundled names: those starting with it, then the closest
            (may be empty).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        names = sample_names()
        asked = name.lower()  # names are lower-case: LAMBDA means lambda
        starting = [n for n in names if asked and n.startswith(asked)]
        import difflib  # only for this message

        close = difflib.get_close_matches(asked, names, n=2, cutoff=0.6)
        self.suggestions = list(dict.fromkeys(starting + close))[:3]
        hint = ""
        if self.suggestions:
            hint = f" (did you mean {' or '.join(map(repr, self.suggestions))}?)"
        super().__init__(f"unknown sample {name!r}{hint}; choose one of: {', '.join(names)}")


def sample_names() -> list[str]:
    """Names of the bundled samples, sorted (e.g. ``["apigw-access", ..., "vpc-flow-custom"]``)."""
    return sorted(_stem(entry.name) for entry in _sample_files())


def sample_path(name: str) -> Traversable:
    """The bundled file of sample ``name``.

    A :class:`~importlib.resources.abc.Traversable`: a :class:`pathlib.Path` for a normal
    installation; use ``.open()`` / ``.read_text()`` to stay independent of that.

    Raises:
        UnknownSampleError: ``name`` is not one of :func:`sample_names`.
    """
    for entry in _sample_files():
        if _stem(entry.name) == name:
            return entry
    raise UnknownSampleError(name)


def read_sample_lines(name: str) -> list[str]:
    """The event messages of sample ``name``, one per non-empty line, in file order.

    Raises:
        UnknownSampleError: ``name`` is not one of :func:`sample_names`.
    """
    return split_lines(sample_path(name).read_text(encoding="utf-8"))


def _sample_files() -> list[Traversable]:
    from importlib.resources import files  # imported when a sample is used (start-up)

    folder = files("castlewatch") / "data" / "samples"
    return [entry for entry in folder.iterdir() if entry.is_file() and entry.name != "README.md"]


def _stem(filename: str) -> str:
    return filename.rsplit(".", 1)[0]
