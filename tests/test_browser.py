"""Reports rendered in a real headless browser (Debian's chromium): every plot decodes.

Each report counts, once loaded, the plots the browser decoded into `data-plots-drawn` on its
body; Chromium's `--dump-dom` prints the page after its scripts ran. Skipped, with the reason,
where no Chromium is installed (`apt install chromium`)."""

import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import SCENARIOS

pytestmark = pytest.mark.browser
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
SHORT = ["--set", "run.duration_s=120", "--set", "run.warmup_s=10"]


def _drawn(page) -> int:
    if BROWSER is None:
        pytest.skip("no headless Chromium installed (apt install chromium)")
    out = subprocess.run([BROWSER, "--headless", "--disable-gpu", "--no-sandbox",
                          "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'data-plots-drawn="(\d+)"', out.stdout)
    assert found, out.stderr[-500:]
    return int(found.group(1))


def test_the_size_report_draws_every_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    page = tmp_path / "size.html"
    res = CliRunner().invoke(app, ["size", str(SCENARIOS / "two_stage_2026.toml"),
                                   "--replicas", "8:9", "--replications", "1", *SHORT,
                                   "--report", str(page)])
    assert res.exit_code == 0, res.output
    assert _drawn(page) == 3


def test_the_run_report_draws_every_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    run = tmp_path / "r"
    assert CliRunner().invoke(app, ["run", str(SCENARIOS / "two_stage.toml"), "--out",
                                    str(run), *SHORT]).exit_code == 0
    assert CliRunner().invoke(app, ["report", str(run)]).exit_code == 0
    assert _drawn(run / "report.html") == 4


def test_the_compare_report_draws_every_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    page = tmp_path / "compare.html"
    res = CliRunner().invoke(app, ["compare", str(SCENARIOS / "chatgpt_equivalent.toml"),
                                   str(SCENARIOS / "two_stage.toml"), *SHORT,
                                   "--report", str(page)])
    assert res.exit_code == 0, res.output
    assert _drawn(page) == 3
