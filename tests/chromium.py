"""Headless Chromium for the report tests: render a page offline, measure its layout, shoot it.

The layout is measured by a script appended to a copy of the page: after load it writes its
figures as JSON into <pre id="sc-layout">, and Chromium's --dump-dom hands the DOM back. No
driver, no DevTools client: only Debian's `chromium`. Run as a module to measure a report:

    python -m tests.chromium reports/report.html [screenshot.png]
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WINDOW_WIDTH = 1400

# Runs after pytest-html's own script has built the results table (that script runs inline
# at the end of the body; `load` comes after it and after every data-URI image decoded).
MEASURE_SCRIPT = """<script id="sc-measure">
window.addEventListener('load', () => setTimeout(() => {
  const where = (el) => {
    const cells = [...el.querySelectorAll('th, td')].map(c => c.textContent.trim());
    const table = el.closest('table');
    return `${table && table.id ? '#' + table.id : 'table'}: ${cells.join(' | ').slice(0, 120)}`;
  };
  const rows = [...document.querySelectorAll('tr')]
    .map(tr => ({height: Math.round(tr.getBoundingClientRect().height), row: where(tr)}))
    .sort((a, b) => b.height - a.height);
  const cells = [...document.querySelectorAll('#segconform-matrix td.sc-cell')];
  const unlinked = cells.filter(td => {
    const link = td.querySelector('a[href^="#"]');
    return !link || !document.getElementById(decodeURIComponent(link.hash.slice(1)));
  }).map(td => td.textContent.trim().slice(0, 80));
  const lines = [...document.querySelectorAll('svg .sc-budget-line')];
  const drawn = lines.filter(line => {
    const box = line.getBoundingClientRect(), chart = line.ownerSVGElement.getBoundingClientRect();
    const style = getComputedStyle(line);
    return box.width > 0 && style.display !== 'none' && style.visibility !== 'hidden'
      && style.opacity !== '0' && box.top >= chart.top && box.bottom <= chart.bottom
      && box.left >= chart.left && box.right <= chart.right;
  });
  const out = document.createElement('pre');
  out.id = 'sc-layout';
  out.textContent = JSON.stringify({
    tallest_row_px: rows.length ? rows[0].height : 0, tallest_row: rows.length ? rows[0].row : '',
    page_width_px: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    viewport_width_px: document.documentElement.clientWidth,
    matrix_cells: cells.length, unlinked_cells: unlinked,
    budget_lines: lines.length, budget_lines_drawn: drawn.length,
    first_heading: (document.querySelector('#segconform-summary h2') || {}).textContent || '',
    summary_top_px: Math.round((document.querySelector('#segconform-summary')
      || document.body).getBoundingClientRect().top),
  });
  document.body.appendChild(out);
}, 0));
</script>"""


def chromium_binary() -> str | None:
    """Chromium or Chrome on this host, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def chromium_command(binary: str, profile_dir: Path, *args: str) -> list[str]:
    """Headless Chromium with networking disabled (any host lookup fails)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile_dir}",
             "--hide-scrollbars"]
    return [binary, *flags, *args]


def chromium(binary: str, profile_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once (see chromium_command)."""
    return subprocess.run(chromium_command(binary, profile_dir, *args), capture_output=True,
                          text=True, timeout=120, check=False)


def with_measurement(page: str) -> str:
    """The page with the measuring script appended to its body."""
    return page.replace("</body>", MEASURE_SCRIPT + "</body>", 1)


def layout_facts(binary: str, pages: Sequence[Path], work: Path,
                 width: int = WINDOW_WIDTH) -> list[dict[str, Any]]:
    """Layout figures of each page at `width` px, measured in parallel Chromium processes."""
    runs = []
    for index, page in enumerate(pages):
        measured = work / f"measured-{index}-{page.name}"
        measured.write_text(with_measurement(page.read_text(encoding="utf-8")), encoding="utf-8")
        # A virtual time budget lets the load handler's timer fire before the DOM is dumped.
        command = chromium_command(binary, work / f"profile-{index}", "--dump-dom",
                                   f"--window-size={width},1000", "--virtual-time-budget=5000",
                                   measured.as_uri())
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True))
    facts = []
    for page, run in zip(pages, runs, strict=True):
        out, err = run.communicate(timeout=120)
        found = re.search(r'<pre id="sc-layout">(.*?)</pre>', out, re.S)
        if not found:
            raise RuntimeError(f"{page}: no measurement in the dumped DOM (exit "
                               f"{run.returncode}): {err[-1500:]}")
        facts.append(json.loads(html.unescape(found.group(1))))
    return facts


def screenshot(binary: str, page: Path, target: Path, work: Path,
               width: int = WINDOW_WIDTH, height: int = 1600) -> subprocess.CompletedProcess[str]:
    """A PNG of the top of the page as a `width` px window shows it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return chromium(binary, work / "profile-shot", f"--screenshot={target}",
                    f"--window-size={width},{height}", "--virtual-time-budget=5000",
                    page.resolve().as_uri())


if __name__ == "__main__":
    import tempfile

    found_binary = chromium_binary()
    if found_binary is None:
        sys.exit("Chromium not found")
    report = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(layout_facts(found_binary, [report], Path(folder))[0], indent=1))
        if len(sys.argv) > 2:
            screenshot(found_binary, report, Path(sys.argv[2]), Path(folder))
