"""docs/filter-patterns.md is the shared specification, copied verbatim so the code's
citations resolve in a clone; castlewatch's own choices go in docs/decisions.md."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "spec" / "filter-patterns.md"


@pytest.mark.skipif(not SHARED.exists(), reason="the shared specification is not beside this checkout")
def test_the_spec_copy_is_the_shared_spec():
    assert (ROOT / "docs" / "filter-patterns.md").read_text() == SHARED.read_text(), (
        "docs/filter-patterns.md differs from ../shared/spec/filter-patterns.md: copy the shared one again; "
        "castlewatch's own decisions belong in docs/decisions.md"
    )


def test_decisions_are_numbered_once():
    text = (ROOT / "docs" / "decisions.md").read_text()
    numbers = [line.split(".")[0] for line in text.splitlines() if line.startswith("## D")]
    assert numbers and len(numbers) == len(set(numbers))
