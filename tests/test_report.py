"""The meeting report: HTML and PDF with the expected pages, escaping and languages."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from sitefinder.report import report_pages, write_report
from tests.map_fixtures import isochrones_fixture, layers_fixture, ranked_fixture, selection_fixture


@pytest.fixture(scope="module")
def ranked():
    r = ranked_fixture(40)
    r.loc[0, "name"] = "<script>alert(1)</script>"  # rank 1: in the table and a page
    return r


@pytest.fixture(scope="module")
def report(ranked, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return write_report(
        ranked,
        out,
        top_n=4,
        layers=layers_fixture(),
        isochrones=isochrones_fixture(ranked),
        selection=selection_fixture(ranked),
        thresholds={"transit": {"ideal": "≤ 300 m", "unacceptable": "> 1 km"}},
        sources=[{"name": "OpenStreetMap", "date": "2025-06-01", "licence": "ODbL 1.0"}],
    )


def test_pdf_has_the_expected_pages(report, ranked):
    _, pdf = report
    pages = PdfReader(pdf).pages
    n_ok = int((ranked["status"] == "ok").sum())
    assert len(pages) == report_pages(n_ok, len(ranked) - n_ok, 4) == 1 + 1 + 4 + 1
    texts = [p.extract_text() for p in pages]
    assert "Tomter for småhus" in texts[0]
    assert "Rangerte tomter" in texts[1] and "ikke er rangert" in texts[1]
    assert "Ligger i et industriområde" in texts[1]  # reason of an excluded plot
    for i, page in enumerate(texts[2:6], start=1):
        assert f"Kandidat nr. {i}" in page and "Forklaring" in page
    assert "Metode" in texts[-1] and "OpenStreetMap" in texts[-1] and "≤ 300 m" in texts[-1]


def test_html_report_has_all_sections_and_escapes(report, ranked):
    html_path, _ = report
    html = html_path.read_text(encoding="utf-8")
    assert html.count('class="candidate"') == 4
    assert "Metode" in html and "Datakilder" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html and "https://" not in html  # self-contained


def test_long_lists_paginate(tmp_path):
    big = ranked_fixture(120, excluded_share=0.5)
    n_ok = int((big["status"] == "ok").sum())
    _, pdf = write_report(big, tmp_path, top_n=2, language="en")
    pages = PdfReader(pdf).pages
    assert len(pages) == report_pages(n_ok, len(big) - n_ok, 2)
    assert len(pages) > 1 + 1 + 2 + 1
    assert "Candidate no. 1" in pages[-3].extract_text()
