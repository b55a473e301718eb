"""The self-contained pages (health page, demo summary): axes people can read."""

import json
import re

import pandas as pd

from monitoring.page import plots_page


def _axes(html: str) -> dict[str, dict]:
    found = re.findall(r'"(yaxis\d*|xaxis\d*)":(\{"anchor"[^}]*\})', html)
    return {name: json.loads(body) for name, body in found}


def test_rates_keep_their_axis_and_cycles_are_ticked_at_whole_numbers():
    frame = pd.DataFrame(
        {"cycle": [1, 2, 3], "golden_precision": [1.0, 1.0, 1.0], "alerts": [0, 3, 1]}
    )
    html = plots_page(
        "t", {"spam": frame}, "cycle", [("golden_precision", "p"), ("alerts", "a")], {}, "none"
    )
    axes = _axes(html)
    assert axes["yaxis"]["range"] == [0, 1.05]  # a constant 1.0 is not drawn on 0..2
    assert "range" not in axes["yaxis2"] and axes["yaxis2"]["rangemode"] == "tozero"
    assert all(axes[x].get("dtick") == 1 for x in ("xaxis", "xaxis2"))
