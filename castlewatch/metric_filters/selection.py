"""``fieldSelectionCriteria`` syntax (spec §8.2 step 10).

Spec: ``docs/filter-patterns.md``.
"""

from __future__ import annotations

import re

# [adopted] The selection language is documented by example only:
#   @aws.region = "us-east-1" AND @aws.account IN ["123456789012", "210987654321"]
# castlewatch accepts: comparisons `@field = "v"` / `!= "v"`, `@field IN [...]`,
# `@field NOT IN [...]`, joined by AND / OR (AND first), with parentheses.
_SELECTION_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<field>@[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)
      | (?P<string>"(?:\\.|[^"\\])*")
      | (?P<op>!=|=)
      | (?P<word>AND|OR|NOT|IN)(?![A-Za-z0-9_])
      | (?P<punct>[\[\](),])
    )""",
    re.VERBOSE,
)


def is_valid_selection_criteria(text: str) -> bool:
    """Whether ``fieldSelectionCriteria`` parses under castlewatch's adopted grammar."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _SELECTION_TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            return False
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    state = {"i": 0}

    def peek() -> tuple[str, str]:
        return tokens[state["i"]] if state["i"] < len(tokens) else ("end", "")

    def take(kind: str, value: str | None = None) -> bool:
        tok = peek()
        if tok[0] == kind and (value is None or tok[1] == value):
            state["i"] += 1
            return True
        return False

    def primary() -> bool:
        if take("punct", "("):
            return disjunction() and take("punct", ")")
        if not take("field"):
            return False
        if take("op"):
            return take("string")
        take("word", "NOT")
        if not (take("word", "IN") and take("punct", "[") and take("string")):
            return False
        while take("punct", ","):
            if not take("string"):
                return False
        return take("punct", "]")

    def conjunction() -> bool:
        if not primary():
            return False
        while take("word", "AND"):
            if not primary():
                return False
        return True

    def disjunction() -> bool:
        if not conjunction():
            return False
        while take("word", "OR"):
            if not conjunction():
                return False
        return True

    return bool(tokens) and disjunction() and peek()[0] == "end"
