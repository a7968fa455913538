"""``fieldSelectionCriteria`` syntax (spec §8.2 step 10).

The language is the small LALR grammar ``selection_criteria.lark`` next to this module
(its header states the [adopted] rule); it is loaded once, on first use.

Spec: ``docs/filter-patterns.md``.
"""

from __future__ import annotations

import functools

from lark import Lark
from lark.exceptions import LarkError


@functools.cache
def _parser() -> Lark:
    return Lark.open("selection_criteria.lark", rel_to=__file__, parser="lalr")


def is_valid_selection_criteria(text: str) -> bool:
    """Whether ``fieldSelectionCriteria`` parses under castlewatch's adopted grammar
    (§8.2 step 10, ``selection_criteria.lark``).

    Args:
        text: the criteria as given, e.g. ``@aws.region = "us-east-1" AND @aws.account IN
            ["123456789012"]``.  Callers handle the empty text (no selection) and the
            2,000-character limit first.

    Returns:
        True if the whole text is one expression of the grammar; False otherwise
        (blank text included).  Never raises for a ``str``.
    """
    try:
        _parser().parse(text)
    except LarkError:
        return False
    return True
