"""``fieldSelectionCriteria`` syntax (spec §8.2 step 10).

The language is the small LALR grammar ``selection_criteria.lark`` next to this module
(its header states the [adopted] rule); it is loaded once, on first use.

Spec: ``docs/filter-patterns.md``.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _parser() -> Any:
    from lark import Lark  # on first use: a run without selection criteria does not import Lark

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
    from lark.exceptions import LarkError

    parser = _parser()
    try:
        parser.parse(text)
    except LarkError:
        return False
    return True
