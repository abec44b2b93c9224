"""Where a CSV's header and data begin: exporters' notes above the header and unit rows below it.

Loggers and SCADA exports open with lines about the file (``#`` comments, or a metadata line with
another number of fields, as a Campbell Scientific TOA5 file's first line) and follow the header
with rows of units or processing (``,kWh``; ``"TS","RN","Deg C","%"``). Read as data, a note
becomes the header and a unit row the first record, which stops a run on an empty timestamp.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["CsvLayout", "csv_layout"]

SEPARATORS = (",", ";", "\t")  # the first wins a tie
EXCEL_HINT = re.compile(r"^\ufeff?sep=(.)\r?\n?$")  # a first line naming the separator, as Excel reads it
MAX_UNIT_ROWS = 3  # rows of units, processing or descriptions a logger writes under its header
# what a data row holds and a row of units does not: a number, or a date or a clock time
DATUM = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$|\d{4}|\d{1,2}[:/.-]\d{1,2}")


@dataclass(frozen=True)
class CsvLayout:
    """A CSV's separator, its header line, the lines before it and the rows between it and the data."""

    separator: str
    header: str
    before: int
    after: int
    # the column names where the header is itself a comment (numpy's savetxt writes ``# a,b,c``)
    # and data follow the comments at once; None: the header is the line after ``before`` lines
    names: tuple[str, ...] | None = None


def csv_layout(lines: list[str], tsv: bool = False) -> CsvLayout:
    """The layout of a CSV from its first ``lines``: ``#`` comments skipped, and a ``sep=;`` line
    (Excel's, naming the separator), then leading lines whose
    number of fields is not that of most lines below them (a metadata line) where the first line of
    that number holds no datum (a header), then, under the header, ``#`` comments and
    up to :data:`MAX_UNIT_ROWS` rows holding no number, date or time, where data rows follow."""
    comments = next((i for i, line in enumerate(lines) if not line.startswith("#")), 0)
    hint = EXCEL_HINT.match(lines[comments]) if comments < len(lines) else None
    if hint:  # Excel's "sep=;" line: the separator, said before the header
        comments += 1
    rest = lines[comments:] or [""]
    separator = hint.group(1) if hint else "\t" if tsv else max(SEPARATORS, key=rest[0].count)
    if comments and not hint and (named := _commented_header(lines[:comments], rest[0], separator)):
        return named
    rows = list(csv.reader(rest, delimiter=separator))
    widths = [len(row) for row in rows if row and not row[0].startswith("#")]  # notes have any width
    width = Counter(widths[1:] or widths).most_common(1)[0][0] if widths else 0
    preamble = next((i for i, row in enumerate(rows) if len(row) == width), 0)
    if preamble and any(DATUM.search(field) for field in rows[preamble]):
        preamble = 0  # the lines of that width hold data: the first line is the header (ragged rows)
    if preamble and not hint:
        separator = "\t" if tsv else max(SEPARATORS, key=rest[preamble].count)
    after = units = 0
    for row in rows[preamble + 1 :]:
        if _comment(row, width):
            after += 1
            continue
        if not row or units == MAX_UNIT_ROWS or any(DATUM.search(field) for field in row):
            break
        after += 1
        units += 1
    data = rows[preamble + 1 + after : preamble + 2 + after]
    if not data or not any(DATUM.search(field) for field in data[0]):
        after = 0  # no data row follows: those were data after all, of a file of text
    return CsvLayout(separator, rest[preamble], comments + preamble, after)


def _commented_header(comments: list[str], first: str, separator: str) -> CsvLayout | None:
    """The layout whose header is the first of the ``comments`` that, its ``#`` taken off, names as
    many columns as the ``first`` line after them holds fields and holds no datum, where that line
    is data (it holds a datum); else None."""
    data = next(csv.reader([first], delimiter=separator), [])
    if not any(DATUM.search(field) for field in data):
        return None
    for line in comments:
        text = line.lstrip("#").strip()
        fields = next(csv.reader([text], delimiter=separator), [])
        if len(fields) == len(data) > 1 and not any(DATUM.search(field) for field in fields):
            return CsvLayout(separator, text, len(comments), 0, tuple(f.strip() for f in fields))
    return None


def _comment(row: list[str], width: int) -> bool:
    """A ``#`` line under the header (a dataset's notes, as spotpy's weather files have): one that
    is not a row of the header's width holding a datum, as a long file's ``#A1,2024-01-01,5`` is."""
    if not row or not row[0].startswith("#"):
        return False
    return len(row) != width or not any(DATUM.search(field) for field in row)
