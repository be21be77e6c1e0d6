"""The one CSV writer: what a spreadsheet program makes of its cells, and that it streams."""

import csv
import io
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unlinker.core.csvexport import BOM, LEADING_IGNORED, csv_response, spreadsheet_safe

# What a spreadsheet program may start a formula with once it has skipped what it skips.
STARTS = "=+-@＝＋－＠﹦﹢﹣﹫"


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://evil")',
        "+1+1",
        "-1+1",
        "@SUM(A1)",
        "\t=1+1",
        "\r=1+1",
        "\tplain",  # a leading tab or carriage return, whatever follows
        " =1+1",  # after spaces ...
        "\n\n=1+1",  # ... line breaks ...
        "\u00a0=1",  # ... a no-break space ...
        "\u3000=1",  # ... an ideographic space
        "＝1+1",  # full-width equals
        "＋1",
        "－1",
        "＠SUM(A1)",
        "﹦1",  # small form
        "  ＝cmd|' /C calc'!A0",
    ],
)
def test_formulas_are_neutralised(cell):
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Smith & Co", "INV-1001", "a=b", "", "  plain", "'quoted"])
def test_plain_text_is_left_alone(cell):
    assert spreadsheet_safe(cell) == cell


@given(st.text(alphabet=st.sampled_from(list(STARTS + LEADING_IGNORED + "abc1 '")), max_size=8))
def test_no_cell_a_program_would_run_survives(cell):
    safe = spreadsheet_safe(cell)
    if safe.startswith("'") and safe[1:] == cell:
        return  # neutralised
    first = cell.lstrip(LEADING_IGNORED)[:1]
    assert not (first and unicodedata.normalize("NFKC", first) in "=+-@")
    assert not cell.startswith(("\t", "\r"))


def rows_of(response) -> tuple[bytes, list[list[str]]]:
    raw = b"".join(response.streaming_content)
    return raw, list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_cells_are_written_as_the_pages_show_them():
    moment = datetime(2026, 12, 2, 18, 3, tzinfo=UTC)
    response = csv_response(
        ["Bool", "No", "Date", "When", "Money", "None", "Text", "Count"],
        iter([[True, False, date(2026, 12, 3), moment, Decimal("3960"), None, "=1", 3]]),
        "x.csv",
        zone=ZoneInfo("Australia/Perth"),
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
    raw, rows = rows_of(response)
    assert raw.startswith(BOM.encode())
    assert rows[1] == [
        "Yes",
        "No",
        "3 Dec 2026",
        "3 Dec 2026, 02:03 AWST",
        "3960.00",  # a number a spreadsheet sums
        "",
        "'=1",
        "3",
    ]
    assert "·" not in raw.decode()


def test_rows_are_read_as_they_are_written():
    """The response pulls rows from the iterator one at a time: a list export of 100,000 rows
    never holds them all (ObjectListView passes QuerySet.iterator())."""
    pulled = []

    def rows():
        for n in range(1_000_000):
            pulled.append(n)
            yield [n]

    response = csv_response(["n"], rows(), "n.csv")
    stream = iter(response.streaming_content)
    assert next(stream).startswith(BOM.encode())  # the header
    assert next(stream) == b"0\r\n"
    assert len(pulled) == 1
