"""A sizing candidate in a few words, the same in the terminal, the report and the API."""

from __future__ import annotations


def fleet_label(c: dict, batch: str = "") -> str:
    """Hardware and TP (a mix: both groups' shares; a disaggregated fleet: its
    prefill:decode ratio and both pools), then `batch` and the batch size when given (the
    terminal's "b", the report's "batch ")."""
    base = f"{c['hardware']} tp{c['tp']}"
    if c.get("ratio") and c.get("decode"):
        (p, d), (hw, tp) = c["ratio"], c["decode"]
        text = f"{p}:{d} {base} / {hw} tp{tp}"
    elif c.get("mix"):
        hw, tp, share = c["mix"]
        text = f"{1 - share:.0%} {base} + {share:.0%} {hw} tp{tp}"
    else:
        text = base
    return f"{text} {batch}{c['max_batch']}" if batch else text
