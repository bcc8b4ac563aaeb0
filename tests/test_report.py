"""The meeting report as the decision document, on the real demo study.

The demo study (bundled Oslo extract and plots) is measured once per session
(tests/conftest.py); one selection of 12 units is made here and the report written once
in bokmål and once in English. The PDF is read back with pypdf, as a reader's PDF viewer
would, and compared with the HTML it was printed from.
"""

from __future__ import annotations

import html as html_lib
import re
from types import SimpleNamespace

import pytest
from pypdf import PdfReader

from sitefinder import static_maps
from sitefinder.errors import InputError
from sitefinder.language import fmt_minutes, sentence
from sitefinder.report import report_text, write_report
from tests.map_fixtures import ranked_fixture


def _normal(text: str) -> str:
    """Whitespace as one space: a line break in the PDF is not a cut in the text."""
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u202f", " ")).strip()


def _pages(pdf) -> list[str]:
    return [_normal(p.extract_text()) for p in PdfReader(pdf).pages]


@pytest.fixture(scope="module")
def chosen(demo_study, demo_ranked):
    from sitefinder.api import select

    return select(demo_study, demo_ranked, units=12)


@pytest.fixture(scope="module")
def reports(demo_study, chosen, tmp_path_factory):
    """The demo report written once in bokmål and once in English (routes, basemap …)."""
    from sitefinder.publish import write_meeting_report

    ranked, selection = chosen
    out = {}
    for language in ("nb", "en"):
        files = write_meeting_report(demo_study, ranked, tmp_path_factory.mktemp(language),
                                     selection=selection, language=language)
        out[language] = SimpleNamespace(
            html=files["report_html"].read_text(encoding="utf-8"),
            pages=_pages(files["report_pdf"]))
    return out


def _chosen_rows(chosen):
    ranked, selection = chosen
    return ranked[ranked["plot_id"].isin(selection.chosen["plot_id"])]


def test_pdf_names_every_chosen_site_and_has_summary_and_caveats(reports, chosen):
    text = " ".join(reports["nb"].pages)
    for _, row in _chosen_rows(chosen).iterrows():
        assert row["plot_id"] in text and _normal(row["name"]) in text
    assert "Sammendrag" in text and "Forbehold" in text
    # The OSM noise estimate and the illustrative demo plots are named as caveats.
    assert "anslag" in text and "ikke kommunens tomter" in text


def test_front_page_gives_the_answer(reports, chosen):
    front = reports["nb"].pages[0]
    _, selection = chosen
    assert "Spørsmålet" in front and "Svaret" in front
    for pid in selection.chosen["plot_id"]:
        assert pid in front
    assert f"til sammen {selection.total_units} enheter" in front
    assert "Bestillingen var 12 enheter" in front


def test_one_page_per_chosen_site_with_routes_in_minutes(reports, chosen, demo_study):
    from sitefinder.publish import walking_routes_for

    _, selection = chosen
    ids = selection.chosen["plot_id"].tolist()
    routes = walking_routes_for(demo_study, ids)
    pages = reports["nb"].pages
    first = next(i for i, p in enumerate(pages) if p.startswith("Valgt sted 1:"))
    last = next(i for i, p in enumerate(pages) if p.startswith("Alle tomter"))
    assert last - first == len(ids)  # each site fits on its one page
    for n, pid in enumerate(ids, start=1):
        page = pages[first + n - 1]
        assert page.startswith(f"Valgt sted {n}:")
        assert pid in page and "Gangveier" in page and "Kriteriene" in page
        for _, route in routes[routes["plot_id"] == pid].iterrows():
            assert _normal(fmt_minutes(route["minutes"])) in page


def test_no_text_is_cut(reports, chosen):
    ranked, _ = chosen
    text = " ".join(reports["nb"].pages)
    assert "…" not in text
    for _, row in ranked.iterrows():
        assert _normal(row["name"]) in text, row["plot_id"]
        if row["status"] != "ok":
            assert _normal(sentence(row["status_reason_nb"])) in text, row["plot_id"]


def test_no_table_page_holds_a_lone_row(reports, chosen):
    ranked, _ = chosen
    ids = set(ranked["plot_id"])
    t = report_text("nb")
    for page in reports["nb"].pages:
        if page.startswith(("Valgt sted", t["title"])) or t["overview_h"] in page[:40]:
            continue  # a site page names its own plot; the front page its answer
        rows = [w for w in re.findall(r"OSL-\d{3}", page) if w in ids]
        assert len(rows) == 0 or len(rows) >= 2, page[:120]


def test_english_report_has_english_headings_only(reports):
    en, nb = report_text("en"), report_text("nb")
    text = " ".join(reports["en"].pages)
    keys = ("summary_h", "caveats_h", "method_h", "sources_h", "overview_h", "all_h",
            "question_h", "answer_h", "sensitivity_h")
    for key in keys:
        assert en[key] in text, key
        assert nb[key] not in text, key
    assert "Chosen site 1:" in text and "Valgt sted" not in text


@pytest.mark.parametrize("language", ["nb", "en"])
def test_html_and_pdf_come_from_one_template(reports, language):
    report = reports[language]
    headings = [_normal(html_lib.unescape(re.sub(r"<[^>]+>", "", h)))
                for h in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", report.html, flags=re.S)]
    assert len(headings) > 10
    text = " ".join(report.pages)
    assert [h for h in headings if h not in text] == []
    assert "http://" not in report.html and "https://" not in report.html  # self-contained


def test_names_are_text_never_markup_and_top_candidates_without_selection(tmp_path):
    ranked = ranked_fixture(30)
    ranked.loc[0, "name"] = "<script>alert(1)</script>"
    html_path, pdf = write_report(ranked, tmp_path, top_n=3, language="en")
    html = html_path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    pages = _pages(pdf)
    assert "No plots have been chosen yet" in pages[0]
    assert sum(p.startswith("Candidate ") for p in pages) == 3
    assert "<script>alert(1)</script>" in " ".join(pages)


def test_screening_gets_its_own_section(tmp_path):
    from sitefinder.screen import screen
    from tests.conftest import TEST_DATA

    result = screen(TEST_DATA / "oslo-clip.osm.pbf", cell_size_m=100.0,
                    layers_dir=tmp_path / "layers")
    assert len(result.areas)
    _, pdf = write_report(ranked_fixture(12), tmp_path, top_n=1, screening=result)
    text = " ".join(_pages(pdf))
    assert report_text("nb")["screening_h"] in text
    for area_id in result.areas["area_id"]:
        assert area_id in text


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(InputError, match="language"):
        write_report(ranked_fixture(5), tmp_path, language="sv")


def test_basemap_is_cached_and_the_extract_not_read_again(osm_data, demo_study, tmp_path):
    class Study:
        plots, crs, osm_path = demo_study.plots, demo_study.crs, demo_study.osm_path
        cache_dir = tmp_path
        reads = 0

        @property
        def osm(self):
            Study.reads += 1
            return osm_data

    static_maps._memo.clear()
    first = static_maps.basemap_for_study(Study())
    assert Study.reads == 1 and list(tmp_path.glob("basemap-*.pkl"))
    static_maps._memo.clear()  # a new process: only the disk cache is left
    again = static_maps.basemap_for_study(Study())
    assert Study.reads == 1
    assert len(again.layers["buildings"]) == len(first.layers["buildings"]) > 1000
    assert again.layers["roads"]["name"].notna().sum() > 100  # streets carry names
