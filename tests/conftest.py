import os

os.environ.setdefault("COLUMNS", "200")  # rich folds tables at 80 columns; tests read whole cells

from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
TRACES = ROOT / "traces"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
