"""Every CSV the product writes (the lists' exports, a batch's audit), one way: streamed a row at
a time, as spreadsheet programs open it cleanly.

- UTF-8 with a byte-order mark: without it Excel reads the file as the machine's legacy code
  page and garbles every name with an accent or a dash.
- Yes/No for booleans, dates and times as the pages show them (unlinker.core.display), in the
  zone given, amounts as plain numbers (a spreadsheet sums them; the currency has a column
  of its own).
- Text that a spreadsheet would run as a formula is neutralised (`spreadsheet_safe`).
- Rows come from an iterator and go out as they are written: 100,000 rows are never in
  memory at once (the lists pass `QuerySet.iterator()`).
"""

import csv
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal

from django.http import StreamingHttpResponse

from . import display

BOM = "\ufeff"
# What Excel, LibreOffice and Google Sheets start a formula (or a DDE call) with. Full-width
# and small forms (＝ ＋ － ＠ ﹦ ﹢ ﹣ ﹫) fold to these under NFKC, which some programs apply.
FORMULA_STARTS = frozenset("=+-@")
# Characters a program skips or splits on before it looks for a formula.
LEADING_IGNORED = "\t\r\n\x0b\x0c \u00a0\u2002\u2003\u2009\u3000\ufeff"


def spreadsheet_safe(cell):
    """Text whose first meaningful character starts a formula gets a leading apostrophe, which
    spreadsheet programs read as "this is text": `=HYPERLINK(...)` in a contact name that came
    from another system must stay text (CSV injection). A formula's start is looked for past
    leading spaces and line breaks, and in its full-width forms, as programs do; text that
    starts with a tab or a carriage return is neutralised whatever follows."""
    if not isinstance(cell, str) or not cell:
        return cell
    if cell[0] in "\t\r":  # OWASP: a tab or a carriage return starts a formula in some programs
        return "'" + cell
    first = cell.lstrip(LEADING_IGNORED)[:1]
    if first and unicodedata.normalize("NFKC", first)[:1] in FORMULA_STARTS:
        return "'" + cell
    return cell


def cell_text(value, zone: tzinfo | None = None):
    """One value as its CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return display.yes_no(value)
    if isinstance(value, datetime):
        return display.format_datetime(value, zone)
    if isinstance(value, date):
        return display.format_date(value)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return value


def rows_as_csv(
    header: Sequence[str], rows: Iterable[Sequence], zone: tzinfo | None = None
) -> Iterator[str]:
    """The lines of the file, the BOM first."""
    writer = csv.writer(_Echo())
    yield BOM + writer.writerow(header)
    for row in rows:
        yield writer.writerow([cell_text(value, zone) for value in row])


def csv_response(
    header: Sequence[str], rows: Iterable[Sequence], filename: str, zone: tzinfo | None = None
) -> StreamingHttpResponse:
    """`zone`: the timezone the file's times are written in (they name it), which must be
    given: the rows are written after the view has returned, outside any timezone it set."""
    response = StreamingHttpResponse(
        rows_as_csv(header, rows, zone or display.default_zone()),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _Echo:
    """csv.writer writes a row to this and gets the line back, to stream it."""

    def write(self, line: str) -> str:
        return line
