"""The study report: one page with a verdict per claim (pooled over cells, with intervals) and the cells."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .html import ENV, _now, _write
from .sections import fmt

log = logging.getLogger(__name__)


def _ci(block: dict | None, key: str = "mean", lo: str = "lo", hi: str = "hi") -> str:
    if not isinstance(block, dict) or block.get(key) is None:
        return "—"
    return f"{fmt(block[key], 3)} [{fmt(block.get(lo), 3)}, {fmt(block.get(hi), 3)}]"


def _stability(p: dict | None) -> str:
    if not isinstance(p, dict):
        return "—"
    return (f"{p['k']} of {p['n']}: {fmt(p['share'], 2)} [{fmt(p['lo'], 2)}, {fmt(p['hi'], 2)}]"
            f" vs {fmt(p.get('permuted'), 2)}")


def cell_rows(cells: list[dict]) -> list[list[str]]:
    """One row per (cell, depth): data and reduction, signal kept, the fit, symmetry, trained networks."""
    rows = []
    for c in cells:
        head = [c["corpus"], c["model"], c["reduction"], str(c["seed"])]
        if "error" in c:
            rows.append([*head, "—", "—", "—", c["error"], *["" for _ in range(9)]])
            continue
        sig = c["signal"]
        for depth, r in sorted(c["depths"].items(), key=lambda t: int(t[0])):
            em = r.get("emergence") or {}
            weighted = _ci({"m": em.get("weighted_share_on_predicted"),
                            "lo": (em.get("weighted_share_on_predicted_ci") or [None])[0],
                            "hi": (em.get("weighted_share_on_predicted_ci") or [None, None])[1]}, "m")
            rows.append([*head, str(c["d"]), f"{fmt(sig['full_r2'], 3)} / {fmt(sig['reduced_r2'], 3)}", str(depth),
                         f"{'proven' if r['exact'] else 'restriction'}, {r['n_features']} features "
                         f"({r.get('n_fold', 0)} fold)",
                         fmt(r["test_r2"], 3), _ci(r.get("symmetry_own")),
                         fmt((r.get("symmetry_own") or {}).get("null_q95"), 3),
                         _ci(r.get("symmetry_all"), "diff", "diff_lo", "diff_hi"), _ci(r.get("multilevel")),
                         _ci({"m": em.get("share_through_point"), "lo": (em.get("share_through_point_ci") or [None])[0],
                              "hi": (em.get("share_through_point_ci") or [None, None])[1]}, "m"),
                         f"{weighted}"
                         f" vs {fmt(em.get('chance_on_predicted'), 2)}",
                         f"{fmt(100 * r['training_gap'], 3)} %" if r.get("training_gap") is not None else "—",
                         _stability(r.get("stability"))])
    return rows


COLUMNS = ["corpus", "model", "reduction", "seed", "d", "linear probe R² full / reduced", "depth", "Lasso",
           "test R²", "symmetry own planes [95 %]", "chance q95", "gain over shallower [95 %]",
           "nested planes [95 %]", "neurons through points [95 %] (chance 0.05)", "neurons on Lasso planes [95 %]",
           "training above Lasso", "same texts across resamples [95 %] vs permuted target"]


def build_study_report(result: dict, out_path) -> Path:
    """Write the study page of ``flows.study.study``'s result: claims first, then every cell, config folded."""
    claims = [{**c, "effect_text": fmt(c.get("effect"), 3), "lo_text": fmt(c.get("lo"), 3),
               "hi_text": fmt(c.get("hi"), 3)}
              for c in result["claims"]]
    cells = result["cells"]
    page = ENV.get_template("study.html").render(
        claims=claims, columns=COLUMNS, rows=cell_rows(cells), n_cells=len(cells),
        n_failed=sum("error" in c for c in cells), wall=fmt(result.get("wall_s"), 3),
        config=json.dumps(result["config"], indent=2, default=str), generated=_now())
    path = _write(out_path, page)
    log.info("wrote the study report (%d cells) to %s", len(cells), path)
    return path
