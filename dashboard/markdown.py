"""Text from outside — values in a link, ids from events — shown inside Streamlit Markdown as exactly
that text. Pure.

Warnings, headers and captions render Markdown: `[x](http://…)` would be a link, `![i](…)` an image
the browser fetches on load, `$…$` LaTeX, `:red[…]` and `:material/…:` Streamlit's directives, and
a bare `www.…` or `http://…` a link even when its characters are backslash-escaped (GitHub-flavoured
autolinks are found in the text after escapes are resolved). A code span is the one place where
Markdown shows every character as it is.
"""

from __future__ import annotations

import re

_BACKTICKS = re.compile(r"`+")


def literal(text: str) -> str:
    """`text` as a Markdown code span: shown as these characters (line breaks as spaces), never rendered."""
    if not text:
        return ""
    # The fence is longer than any run of backticks inside; the spaces, which the renderer drops,
    # let the text begin or end with a backtick.
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    return f"{fence} {text} {fence}"
