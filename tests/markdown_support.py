"""How a card's Markdown reads once an EHR renders it (CommonMark): the lines it runs together.

A line after another with a single line break joins that line's paragraph (a soft break, shown as a
space), unless it opens a block that may interrupt a paragraph: a bullet item, or a numbered one
starting at 1 (CommonMark 0.31, §5.3: "4. …" after "**Document**" is more of that paragraph). A list
item's sub-item stands inside it only when indented to the item's text ("10. " needs four spaces).
Written out here rather than with a Markdown package, which the project does not depend on.
"""

from __future__ import annotations

import re

_ITEM = re.compile(r"(?P<indent> *)(?P<marker>[-*+]|\d{1,9}[.)])(?P<gap> +)\S")


def run_together(markdown: str) -> list[str]:
    """Each line a renderer shows on the line before it, or outside the list item its indentation puts
    it under, with the line before ("before ⏎ after")."""
    found = []
    in_list = False  # the block the line before belongs to is a list
    items: list[tuple[int, int]] = []  # the open items: (indentation, where their text starts)
    before = ""
    for line in markdown.split("\n"):
        item = _ITEM.match(line)
        if not line.strip():
            pass
        elif not before.strip():  # a block of its own
            in_list, items = item is not None, []
        elif item is None or (not in_list and item["marker"] not in ("-", "*", "+", "1.", "1)")):
            found.append(f"{before} ⏎ {line}")
        if item is not None and line.strip():
            indent = len(item["indent"])
            while items and indent < items[-1][1]:  # not under the last item's text: its sibling or beyond
                sibling = indent >= items.pop()[0]
                if sibling:
                    break
            if indent and not items:
                found.append(f"{before} ⏎ {line} (outside the item it is indented under)")
            items.append((indent, indent + len(item["marker"]) + len(item["gap"])))
            in_list = True
        before = line
    return found


def shown_lines(markdown: str) -> list[str]:
    """The lines of `markdown` a reader sees, without the blank ones between its paragraphs."""
    return [line for line in markdown.splitlines() if line.strip()]
