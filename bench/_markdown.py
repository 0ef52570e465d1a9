"""Text helpers the benchmark scripts share (``bench/`` is on ``sys.path`` when one runs)."""

from __future__ import annotations


def replace_block(text: str, markers: tuple[str, str], body: str) -> str:
    """``text`` with what lies between the two markers replaced by ``body`` (markers kept).

    >>> replace_block("a <!-- s -->old<!-- e --> b", ("<!-- s -->", "<!-- e -->"), "new")
    'a <!-- s -->\\nnew\\n<!-- e --> b'
    """
    start, end = markers
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"expected one {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"
