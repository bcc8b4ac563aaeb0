"""ranked.xlsx / selected.xlsx: what a property department sees when it opens them in Excel."""

from __future__ import annotations

import openpyxl
import pytest

from sitefinder.spreadsheets import column_label, write_ranked_xlsx, write_selected_xlsx

# Names a municipality's plot list may hold that a spreadsheet would otherwise run.
RISKY = ["=1+1", "@SUM(A1)", "-2+3", "+47 22 00 00 00", "\tTab first", "\rCR first"]


@pytest.fixture(scope="module")
def plots(demo_ranked):
    """The demo ranking with risky names and two chosen sites."""
    frame = demo_ranked.copy()
    frame["name"] = frame["name"].astype(object)
    for i, text in enumerate(RISKY):
        frame.iloc[i, frame.columns.get_loc("name")] = text
    # A control character Excel cannot store must not stop the workbook.
    frame.iloc[len(RISKY), frame.columns.get_loc("name")] = "Tomt\x07 ved bekken"
    ranked = frame.index[frame["status"] == "ok"][:2]
    frame["selected"] = False
    frame["selected_units"] = 0
    frame.loc[ranked, "selected"] = True
    frame.loc[ranked, "selected_units"] = 2
    return frame


@pytest.fixture(scope="module")
def sheet_nb(plots, tmp_path_factory):
    path = write_ranked_xlsx(plots, tmp_path_factory.mktemp("xlsx") / "ranked.xlsx", "nb")
    return openpyxl.load_workbook(path).active


def _columns(ws) -> dict[str, int]:
    return {cell.value: cell.column for cell in ws[1]}


def _column(ws, header):
    col = _columns(ws)[header]
    return [ws.cell(row=r, column=col) for r in range(2, ws.max_row + 1)]


def test_every_plot_is_a_row_under_a_frozen_filtered_header(plots, sheet_nb):
    assert sheet_nb.max_row == len(plots) + 1
    assert sheet_nb.freeze_panes == "B2"  # header row and id column stay in view
    assert sheet_nb.auto_filter.ref == f"A1:{sheet_nb.cell(1, sheet_nb.max_column).column_letter}" \
        f"{len(plots) + 1}"
    headers = list(_columns(sheet_nb))
    assert headers[:4] == ["Tomte-ID", "Navn", "Rangering", "Poeng (0–100)"]
    assert [c.value for c in _column(sheet_nb, "Tomte-ID")] == plots["plot_id"].tolist()
    assert "Antall holdeplasser innen 10 min" in headers
    # One language: the English text columns are not in the Norwegian workbook.
    assert not [h for h in headers if h.endswith("_en") or h.endswith("_nb")]
    assert "Forklaring" in headers and "Explanation" not in headers
    for letter, dimension in sheet_nb.column_dimensions.items():
        assert 8 <= dimension.width <= 60, letter


def test_formula_looking_names_stay_text(sheet_nb):
    names = _column(sheet_nb, "Navn")
    for cell, text in zip(names, RISKY, strict=False):
        # Shown as written, no apostrophe (XML stores a carriage return as a line feed).
        assert cell.value == text.replace("\r", "\n")
        assert cell.data_type == "s" and cell.quotePrefix
    assert names[len(RISKY)].value == "Tomt ved bekken"


def test_numbers_are_numbers_with_formats(plots, sheet_nb):
    ranks = _column(sheet_nb, "Rangering")
    ranked = [c for c in ranks if c.value is not None]
    assert len(ranked) == int((plots["status"] == "ok").sum())
    assert all(isinstance(c.value, int) and c.number_format == "0" for c in ranked)
    assert sorted(c.value for c in ranked) == list(range(1, len(ranked) + 1))
    scores = [c for c in _column(sheet_nb, "Poeng (0–100)") if c.value is not None]
    assert scores and all(isinstance(c.value, float) and c.number_format == "0.0"
                          for c in scores)
    walk = [c for c in _column(sheet_nb, "Gangavstand til holdeplass (m)") if c.value is not None]
    assert walk and all(isinstance(c.value, int) and c.number_format == "#,##0" for c in walk)
    residents = [c.value for c in _column(sheet_nb, "Innbyggere innen 500 m") if c.value]
    assert residents and all(isinstance(v, int) for v in residents)  # whole people


def test_yes_no_and_statuses_in_words(plots, sheet_nb):
    assert {c.value for c in _column(sheet_nb, "Valgt")} == {"Ja", "Nei"}
    assert {c.value for c in _column(sheet_nb, "I industriområde")} <= {"Ja", "Nei"}
    statuses = {c.value for c in _column(sheet_nb, "Status")}
    assert {"Rangert", "Utelukket"} <= statuses and "ok" not in statuses


def test_english_workbook(plots, tmp_path):
    ws = openpyxl.load_workbook(write_ranked_xlsx(plots, tmp_path / "r.xlsx", "en")).active
    headers = list(_columns(ws))
    assert headers[:4] == ["Plot ID", "Name", "Rank", "Score (0–100)"]
    assert "Forklaring" not in headers
    assert {c.value for c in _column(ws, "Chosen")} == {"Yes", "No"}
    assert {"Ranked", "Excluded"} <= {c.value for c in _column(ws, "Status")}
    assert ws.title == "Ranked plots"


def test_selected_workbook_holds_the_chosen_sites(plots, tmp_path):
    ws = openpyxl.load_workbook(write_selected_xlsx(plots, tmp_path / "s.xlsx")).active
    chosen = plots[plots["selected"]]
    assert [c.value for c in _column(ws, "Tomte-ID")] == chosen["plot_id"].tolist()
    assert [c.value for c in _column(ws, "Valgte enheter")] == [2, 2]
    assert ws.freeze_panes == "B2" and ws.title == "Valgte steder"


def test_column_labels():
    assert column_label("count_pharmacy_10min") == "Antall apotek innen 10 min"
    assert column_label("time_meeting_min", "en") == "Walking time to a meeting place (min)"
    assert column_label("value_drug_scene", criteria={"drug_scene": ("rusmiljø", "drug scene")}) \
        == "Verdi (0–1): rusmiljø"
    assert column_label("kommunens_eget_felt") == "kommunens_eget_felt"  # the user's column
