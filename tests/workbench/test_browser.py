"""The review page in headless Chromium driven by Playwright: sign in, filter the queue, open a
flagged transaction, read its waterfall, reasons, behaviour comparison and network, record a
disposition and find it in the audit chain; scorers cannot open the page, auditors cannot
disposition. Screenshots go to test-artifacts/screenshots (not in git)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from illicitflows.audit.dispositions import DispositionLog
from illicitflows.serving.app import app
from illicitflows.serving.ui import ui

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install "
                                  "playwright; the browser is Debian's chromium)")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y "
                "chromium; .ci/install-chromium does it) to run the browser tests",
                allow_module_level=True)
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def site(workbench) -> Iterator[str]:
    """The service as BentoML mounts it (the API under /v1, the review page under /ui), on a
    free local port."""
    outer = FastAPI()
    outer.mount("/v1", app)
    outer.mount("/ui", ui)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(outer, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test server did not start within 30 s"
    yield f"http://127.0.0.1:{port}/ui"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def sign_in(browser, site: str, secret: str):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(site)
    page.fill("#key", secret)
    page.click("#sign-in")
    return page


def shot(page, name: str) -> None:
    """The whole page as PNG, and its first screen as a small JPEG (for docs)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(SHOTS / f"{name}-small.jpg"), type="jpeg", quality=55)


def test_an_analyst_reviews_and_dispositions_a_flagged_transfer(workbench, site,
                                                                 browser) -> None:
    page = sign_in(browser, site, workbench.keys["analyst"])
    assert page.url == f"{site}/queue"
    flagged = len(workbench.flagged()) + len(workbench.flagged("trade"))
    assert int(page.inner_text("#total")) == flagged
    assert int(page.inner_text("#count-none")) == flagged

    page.select_option("#detector", "transactions")
    page.fill("#min_score", "0.5")
    page.click("#apply")
    rows = page.locator("tr.alert")
    assert rows.count() >= 1
    scores = [float(rows.nth(i).locator("td").nth(3).inner_text()) for i in range(rows.count())]
    assert all(score >= 0.5 for score in scores) and scores
    assert all(rows.nth(i).locator("td").nth(1).inner_text() == "transactions"
               for i in range(rows.count()))
    expected = sum(r["score"] >= 0.5 for r in workbench.flagged())
    assert int(page.inner_text("#total")) == expected
    shot(page, "queue")

    networked = _with_network(workbench)
    page.goto(f"{site}/decisions/{networked}")
    assert page.locator("#waterfall svg rect.step").count() >= 5
    assert page.locator("#reasons li").count() >= 1
    assert "amount paid" in page.inner_text("#behaviour")
    assert page.locator("#network svg line.edge.flagged").count() >= 1
    assert page.inner_text("#verdict").startswith("FLAGGED")
    assert page.get_attribute("#standalone", "href") == f"/v1/decisions/{networked}/report"
    shot(page, "decision")
    page.click("#network-link")
    assert page.locator("#network svg circle.node").count() >= 2
    page.go_back()

    page.fill("#note", "mule account pattern, confirmed with the bank")
    with page.expect_navigation():
        page.click("#dispose button[data-status=confirmed]")
    assert "mule account pattern" in page.inner_text("#dispositions")
    log = DispositionLog(workbench.runtime.audit.url)
    history = log.history(networked)
    assert [(d.status, d.role) for d in history] == [("confirmed", "analyst")]
    assert history[0].decision_hash == workbench.runtime.audit.get(networked).row_hash
    assert log.verify().ok and log.verify().checked == 1
    log.close()

    page.goto(f"{site}/queue?disposition=confirmed")
    assert page.locator("tr.alert").count() == 1
    assert page.locator("tr.alert").get_attribute("data-decision") == networked
    page.close()


def _with_network(workbench) -> str:
    for result in workbench.flagged():
        html = workbench.client.get(f"/decisions/{result['decision_id']}/report",
                                    headers=workbench.headers("auditor")).text
        if 'class="network"' in html:
            return result["decision_id"]
    raise AssertionError("some flagged transfer should belong to a network")


def test_scorers_cannot_open_the_page_and_auditors_cannot_disposition(workbench, site,
                                                                      browser) -> None:
    page = sign_in(browser, site, workbench.keys["scorer"])
    assert "cannot open the review page" in page.inner_text("#error")
    page.goto(f"{site}/queue")
    assert page.locator("#queue").count() == 0 and page.locator("#key").count() == 1
    page.close()

    decision_id = workbench.flagged()[0]["decision_id"]
    page = sign_in(browser, site, workbench.keys["auditor"])
    page.goto(f"{site}/decisions/{decision_id}")
    assert page.locator("#waterfall svg").count() == 1
    assert page.locator("#dispose").count() == 0
    status = page.evaluate(
        """(path) => fetch(path, {method: 'POST', headers: {'Content-Type':
        'application/json'}, body: JSON.stringify({status: 'dismissed'})}).then(r => r.status)""",
        site.removesuffix("/ui") + f"/v1/decisions/{decision_id}/disposition")
    assert status == 403
    assert workbench.runtime.dispositions.history(decision_id) == []
    page.click("#sign-out")
    page.goto(f"{site}/queue")
    assert page.locator("#key").count() == 1
    page.close()

