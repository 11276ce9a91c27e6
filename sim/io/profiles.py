"""Writing a step-time profile TOML atomically."""

from __future__ import annotations

from pathlib import Path

import tomli_w

from sim.io.atomic import write_text
from sim.model.profile import Profile, to_dict

HEADER = ("# A step-time profile for the roofline model, written by `searchsim calibrate`\n"
          "# (see docs/accuracy.md). Regenerate rather than edit: `make profiles`.\n")


def write_profile(p: Profile, path: str | Path) -> Path:
    return write_text(Path(path), HEADER + tomli_w.dumps(to_dict(p)))
