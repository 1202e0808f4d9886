"""Every relative link of README.md and docs/*.md leads somewhere: to a file of the repository
and, with a `#fragment`, to a heading or an `<a id>` of that file (GitHub's anchors)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE = re.compile(r"```.*?```", re.DOTALL)


def anchors(document: Path) -> set[str]:
    """The fragments GitHub gives a rendered Markdown file: one per heading, and explicit ids."""
    text = _CODE.sub("", document.read_text())
    found = set(re.findall(r'<a id="([^"]+)"', text))
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE):
        title = re.sub(r"<[^>]+>", "", heading).strip().lower()
        found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_every_relative_link_of_the_docs_resolves() -> None:
    broken = []
    for document in DOCUMENTS:
        for target in _LINK.findall(_CODE.sub("", document.read_text())):
            if re.match(r"[a-z]+:", target):
                continue  # another site: not this test's business
            path, _, fragment = target.partition("#")
            linked = (document.parent / path).resolve() if path else document
            if not linked.exists():
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such file)")
            elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []
