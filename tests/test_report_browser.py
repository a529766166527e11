"""The written report in a real headless browser (Chromium): nothing wider than the viewport, every image
loads, no text under 10 px, at a phone's width and a desktop's. Skipped, saying why, without a browser."""

import shutil
from pathlib import Path

import pytest

from painters.report.page import report
from painters.study.store import open_existing

FIGURES = Path(__file__).parent.parent / "docs" / "figures"
# the committed studies' stores and the figures their reports draw: similarity, 2 single-layer, 6 per task,
# 2 all-variant, looped, 2 order, the paired order test, trade-off; Gemma's store also holds GSM8K (gold only)
STUDIES = {"paper-smollm2-135m": 16, "paper-gemma3-270m": 17}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Every element outside a scrolling box must fit the viewport; every image must have loaded; every element
# with its own text must be at least 10 px. Returns the offenders, so a failure names them.
MEASURE = """() => {
  const width = window.innerWidth, found = {wide: [], images: [], small: []};
  const scrolls = el => { for (let a = el.parentElement; a; a = a.parentElement) {
      if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX)) return true; } return false; };
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width && (box.right > width + 0.5 || box.left < -0.5) && !scrolls(el))
      found.wide.push(el.tagName + ' ' + Math.round(box.left) + '-' + Math.round(box.right));
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (text && parseFloat(getComputedStyle(el).fontSize) < 10) found.small.push(el.tagName + ': ' + el.textContent.slice(0, 30));
  }
  for (const img of document.images) if (!img.complete || !img.naturalWidth) found.images.push(img.alt.slice(0, 40));
  found.pageWidth = document.documentElement.scrollWidth;
  found.imageCount = document.images.length;
  return found;
}"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium): the report's layout is not checked")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module", params=sorted(STUDIES))
def written(request, tmp_path_factory):
    """The report of a committed study's store, drawn from the store opened read-only, and its figure count."""
    store_path = FIGURES / request.param / "results.db"
    before = store_path.read_bytes()
    with open_existing(store_path) as store:
        index = report(store, tmp_path_factory.mktemp("report"))
    assert store_path.read_bytes() == before and not store_path.with_name("results.db-wal").exists()
    return index, STUDIES[request.param]


@pytest.mark.parametrize("width", [400, 1400])
def test_the_report_reads_at_every_width(browser, written, width):
    written, figures = written
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(written.as_uri())
    page.wait_for_load_state("load")
    found = page.evaluate(MEASURE)
    page.close()
    assert found["pageWidth"] <= width
    assert found["wide"] == []
    assert found["images"] == []
    assert found["small"] == []
    assert found["imageCount"] == figures
