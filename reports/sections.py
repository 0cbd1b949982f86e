"""The content of a run report, section by section, as plain values for the templates.

``report_context(bundle)`` turns a run bundle (``Store.load_run``) into the template context and
the Plotly figures it references; every section is present only when its data exists.
"""
from __future__ import annotations

import html
import json
import logging
import math
import re
import textwrap

import numpy as np
import pandas as pd

from analysis.records import TrainingResult, TrainingRun

from . import plots
from .features import mirror_pairs

log = logging.getLogger(__name__)

HOVER_CHARS = 240
TABLE_CHARS = 200
TITLE_CHARS = 1000
MAX_W = 8


def fmt(value, digits: int = 4) -> str:
    """A value as short text: numbers to ``digits`` significant digits, None as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.{digits}g}"
        return f"{v:.{max(digits - 2, 1)}e}"
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        shown = ", ".join(fmt(v, digits) for v in items[:MAX_W])
        return f"({shown}{', …' if len(items) > MAX_W else ''})" + (f" [{len(items)}]" if len(items) > MAX_W else "")
    return str(value)


def when(value) -> str:
    """A timestamp (ISO text or datetime) as ``YYYY-mm-dd HH:MM:SS UTC``; other values as ``fmt``."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return fmt(value)
    if pd.isna(stamp):
        return "—"
    stamp = stamp.tz_convert("UTC") if stamp.tzinfo else stamp
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def shorten(text, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def scalars(obj, prefix: str = "", skip: tuple = ()) -> list[tuple[str, str]]:
    """``(key, formatted value)`` rows of a nested dict; long lists are summarised by length."""
    if not isinstance(obj, dict):
        return [(prefix or "value", fmt(obj))] if obj is not None else []
    rows = []
    for key, value in obj.items():
        if key in skip:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += scalars(value, name + ".")
        elif isinstance(value, (list, tuple, np.ndarray)) and (
                len(value) > MAX_W or any(isinstance(v, (list, tuple, dict, np.ndarray)) for v in value)):
            rows.append((name, f"{len(value)} values"))
        else:
            rows.append((name, fmt(value)))
    return rows


def _number(obj) -> float | None:
    return float(obj) if isinstance(obj, (int, float, np.integer, np.floating)) and not isinstance(obj, bool) else None


def numbers(obj, prefix: str) -> dict[str, float]:
    """Numeric entries of a number or a (one level) dict, keyed ``prefix`` or ``prefix: key``."""
    if _number(obj) is not None:
        return {prefix: _number(obj)}
    if isinstance(obj, dict):
        return {f"{prefix}: {k}": _number(v) for k, v in obj.items() if _number(v) is not None}
    return {}


class Points:
    """The stored points of a run (ordered by ``idx``): coordinates, targets, texts, and the
    training rows, which a fit's feature ``points`` index (the fit saw ``X[split == "train"]``)."""

    def __init__(self, df: pd.DataFrame):
        self.df = df.sort_values("idx", kind="stable").reset_index(drop=True)
        self.coords = np.asarray(self.df["coords"].tolist(), dtype=float).reshape(len(self.df), -1)
        self.target = pd.to_numeric(self.df["target"], errors="coerce").to_numpy(float)
        train = (self.df["split"] == "train").to_numpy()
        self.train_rows = np.flatnonzero(train)
        self.test_rows = np.flatnonzero(~train)

    @property
    def d(self) -> int:
        return self.coords.shape[1]

    @property
    def X_train(self) -> np.ndarray:
        return self.coords[self.train_rows]

    def describe(self, p: int, label: str = "") -> dict:
        """Table entry of training point ``p``: its training row ``p`` (as in feature ids), its corpus row
        ``idx`` (as in the plots), id, text (short and full), target, fold label."""
        if not 0 <= p < len(self.train_rows):
            return {"row": p, "idx": "?", "id": "", "text": "(point not stored)", "full": "", "target": "—",
                    "label": label}
        r = self.train_rows[p]
        row = self.df.iloc[r]
        return {"row": p, "idx": int(row["idx"]), "id": str(row["id"]), "text": shorten(row["text"], TABLE_CHARS),
                "full": shorten(row["text"], TITLE_CHARS), "target": fmt(self.target[r], 3), "label": label}

    def payload(self) -> dict:
        """Shared arrays of the page: plotted positions, colours, escaped hover texts, splits."""
        x, y = plots.point_xy(self.coords, self.target)
        hover = []
        for r, row in self.df.iterrows():
            lines = textwrap.wrap(shorten(row["text"], HOVER_CHARS), 70) or [""]
            head = f"<b>#{int(row['idx'])} {html.escape(shorten(row['id'], 40))}</b> · {html.escape(str(row['split']))}"
            head += f" · target {fmt(self.target[r], 3)}"
            if isinstance(row.get("label"), str) and row["label"]:
                head += f" · {html.escape(shorten(row['label'], 30))}"
            hover.append(head + "<br>" + "<br>".join(html.escape(s) for s in lines))
        return {"x": _finite(x), "y": _finite(y), "c": _finite(self.target), "text": hover,
                "index": {"train": self.train_rows.tolist(), "test": self.test_rows.tolist()}}


def _finite(a) -> list:
    """JSON-able floats (6 decimals), None where not finite."""
    return [round(float(v), 6) if np.isfinite(v) else None for v in np.asarray(a, dtype=float)]


def _frame(value, columns) -> pd.DataFrame:
    return value if isinstance(value, pd.DataFrame) else pd.DataFrame(columns=columns)


def normalise_fit(fit: dict) -> dict:
    """A fit with a features table (possibly empty) ordered by ``|coef|``."""
    features = _frame(fit.get("features"), ["id", "kind", "depth", "points", "labels", "w", "b", "offsets",
                                            "coef", "source", "equivalents"])
    if len(features):
        features = features.iloc[np.argsort(-np.abs(features["coef"].to_numpy(float)), kind="stable")]
    return {**fit, "features": features.reset_index(drop=True)}


def _share(k, n) -> str:
    return f"{k} of {n}"


def stability_texts(entry: dict | None, stab: dict) -> dict:
    """Plain words of one feature's ``analysis.stability`` entry: the same texts, a nearby plane, each text."""
    if not isinstance(entry, dict):
        return {"same": "", "near": "", "texts": {}}
    n = stab.get("n_resamples")
    if not entry.get("points"):
        same = ""
    elif entry["same_points_of"]:
        same = (f"defined by the same texts in {_share(entry['same_points'], entry['same_points_of'])} resamples"
                + (f" that kept them ({entry['dropped']} others dropped one of them)" if entry["dropped"] else "")
                + (f", {entry['same_by_equivalent']} of them by an equivalent feature (other texts, the same values "
                   "on the data)" if entry.get("same_by_equivalent") else ""))
    else:
        same = f"each of the {n} resamples dropped one of its texts"
    near = (f"a plane within {fmt(stab.get('angle_tol'), 2)}° and {fmt(stab.get('offset_tol'), 2)} in "
            f"{_share(entry['near_plane'], entry['near_plane_of'])} (chance {fmt(entry.get('chance_near_plane'), 2)})")
    texts = {int(t["point"]): f"defines a plane in {_share(t['defines'], t['of'])}" for t in entry.get("texts", [])}
    return {"same": same, "near": near, "texts": texts}


def stability_summary(stab) -> str | None:
    """One sentence: how the resamples were drawn and what a permuted target gets."""
    if not isinstance(stab, dict) or not stab.get("n_resamples"):
        return None
    ref = stab.get("permuted") or {}
    text = (f"Refitted on {stab['n_resamples']} random subsamples of {stab['n_kept']} of the {stab['n_points']} "
            f"training texts (beta {fmt(stab.get('beta'), 4)}, scaled to the subsample). A random kept text "
            f"defines a plane in {fmt(stab.get('chance_text'), 2)} of them.")
    if ref.get("features"):
        text += (f" A randomly permuted target (no link to the texts) gets, on average: the same texts in "
                 f"{fmt(ref.get('same_points'), 2)}, a nearby plane in {fmt(ref.get('near_plane'), 2)}, each "
                 f"defining text again in {fmt(ref.get('texts'), 2)} of the resamples; stability means well "
                 "above these, as subsamples share most of their texts.")
    elif "features" in ref:
        text += " A randomly permuted target selects no feature at this beta."
    return text


def feature_rows(fit: dict, pts: Points | None) -> list[dict]:
    """One table row per selected feature: kind, coefficient, planes, defining points, mirrors, stability."""
    rows = []
    stab = fit.get("stability") if isinstance(fit.get("stability"), dict) else {}
    by_id = {e["id"]: e for e in stab.get("features", [])}
    for rank, f in fit["features"].iterrows():
        labels = tuple(f["labels"]) if isinstance(f.get("labels"), (list, tuple, np.ndarray)) else ()
        points = [int(p) for p in f["points"]]
        offsets = tuple(f["offsets"])
        row = {"rank": rank + 1, "id": str(f["id"]), "kind": str(f["kind"]), "depth": int(f["depth"]),
               "coef": fmt(float(f["coef"])), "sign": "pos" if f["coef"] > 0 else "neg",
               "source": str(f.get("source", "") or ""), "w": fmt(list(f["w"]), 3), "b": fmt(float(f["b"]), 3),
               "offsets": fmt(list(offsets), 3) if offsets else "",
               "equivalents": (len(f["equivalents"])
                               if isinstance(f.get("equivalents"), (list, tuple, np.ndarray)) else 0),
               "points": [], "mirrors": [], "stability": stability_texts(by_id.get(str(f["id"])), stab)}
        if pts is not None:
            row["points"] = [{**pts.describe(p, labels[i] if i < len(labels) else ""),
                              "stab": row["stability"]["texts"].get(p, "")} for i, p in enumerate(points)]
            if offsets and all(0 <= p < len(pts.train_rows) for p in points):
                for m in mirror_pairs(f["w"], f["b"], labels, points, pts.X_train):
                    m["source_xy"] = pts.X_train[m["source"], :2]
                    m["source_point"] = pts.describe(m["source"])
                    m["nearest_point"] = pts.describe(m["nearest"])
                    m["distance_text"] = fmt(m["distance"], 3)
                    row["mirrors"].append(m)
        rows.append(row)
    return rows


def metric_table(metrics) -> dict | None:
    """``{columns, rows}`` of metrics, splits as columns: from ``{"train": {"r2": ..}}`` or from
    ``{"train_r2": ..}``; any other dict as a two-column table."""
    if not isinstance(metrics, dict) or not metrics:
        return None
    if not all(isinstance(v, dict) for v in metrics.values()):
        split = [re.match(r"^(train|test)_(.+)$", k) for k in metrics]
        if not all(split):
            return {"columns": ["metric", "value"], "rows": [[k, v] for k, v in scalars(metrics)]}
        nested = {}
        for m, value in zip(split, metrics.values()):
            nested.setdefault(m.group(1), {})[m.group(2)] = value
        metrics = nested
    names = list(dict.fromkeys(k for v in metrics.values() for k in v))
    return {"columns": ["metric", *metrics], "rows": [[n, *(fmt(v.get(n)) for v in metrics.values())] for n in names]}


def _kinds(features: pd.DataFrame) -> dict[str, float]:
    n = len(features)
    counts = features["kind"].value_counts() if n else pd.Series(dtype=int)
    return {k: (counts.get(k, 0) / n if n else None) for k in ("reflection", "midpoint", "fold", "plane")}


CERTIFICATE_COLUMNS = ("proven network optimum", "dictionary duality gap", "certified gap to the network optimum")


def certificate_columns(cert: dict) -> dict:
    """The certificate's comparison columns, keeping apart what is proven about the network (``exact``;
    ``gap = upper - lower bound``, only where a lower bound is certified) and the duality gap of the
    dictionary Lasso, which says nothing about the network."""
    if not cert:
        return {}
    certified = cert.get("gap") if cert.get("lower_bound") is not None else None
    return dict(zip(CERTIFICATE_COLUMNS, (bool(cert.get("exact")), cert.get("duality_gap"), certified)))


def comparison_table(fits: list[dict], networks: list[TrainingResult]) -> dict | None:
    """Depths side by side: objective, features, reflection share, certificate, symmetry, training against the Lasso."""
    if not fits and not networks:
        return None
    by_depth = {}
    for fit in fits:
        shares = _kinds(fit["features"])
        cert = fit.get("certificate") or {}
        by_depth[int(fit["depth"])] = {
            "objective": fit.get("objective"), "features": len(fit["features"]),
            "reflection share": shares["reflection"],
            **certificate_columns(cert), **symmetry_columns(fit.get("symmetry"))}
    for net in networks:
        row = by_depth.setdefault(net.depth, {})
        row.update({"training gap to Lasso": _gap(net.best_run()), **emergence_share(net.emergence)})
    columns = list(dict.fromkeys(k for row in by_depth.values() for k in row))
    columns = [c for c in columns
               if c in CERTIFICATE_COLUMNS or any(row.get(c) is not None for row in by_depth.values())]
    return {"columns": ["depth", *columns],
            "rows": [[str(d), *(fmt(by_depth[d].get(c)) for c in columns)] for d in sorted(by_depth)]}


def symmetry_columns(sym) -> dict:
    """The symmetry step's headline for the depth table: own-plane score [interval], chance, gain over the
    shallower depth [interval]; older results (plain numbers) as they are."""
    if not isinstance(sym, dict) or "own" not in sym:
        return numbers(sym, "symmetry")
    own = sym.get("own") or {}
    out = {"symmetry (own planes)": _ci(own["mean"], own["lo"], own["hi"]) if own else None,
           "chance q95": fmt(own.get("null_q95"), 3) if own else None}
    if sym.get("diff") is not None:
        out["gain vs shallower"] = _ci(sym["diff"], sym["diff_lo"], sym["diff_hi"])
    return out


def emergence_share(emergence) -> dict:
    """The contribution-weighted share of trained neurons through training points with its interval where
    measured, else the share landing on a predicted plane (a number, or a dict's ``share_on_predicted`` / ``share``)."""
    if isinstance(emergence, dict) and "share_through_point" in emergence:
        return {"neurons through points (chance 0.05)": _ci(emergence["share_through_point"],
                                                            *emergence["share_through_point_ci"])}
    share = emergence.get("share_on_predicted", emergence.get("share")) if isinstance(emergence, dict) else emergence
    return {"emergence share": _number(share)} if _number(share) is not None else {}


def _gap(run: TrainingRun | None):
    return None if run is None else run.relative_gap


def training_curves(net: TrainingResult) -> list[tuple[str, list]]:
    """``(name, objective per step)`` of every stored curve (one per seed of each run)."""
    out = []
    for run in net.runs:
        name = " ".join(f"{prefix}{value}" for value, prefix in ((run.architecture, ""), (run.width, "width "))
                        if value is not None)
        curves = run.curves or []
        seeds = run.seeds or list(range(len(curves)))
        for i, curve in enumerate(curves):
            if isinstance(curve, (list, tuple, np.ndarray)) and len(curve):
                label = f"seed {seeds[i]}" if len(curves) > 1 and i < len(seeds) else ""
                out.append((" ".join(filter(None, [name, label])) or "training", curve))
    return out


def training_view(net: TrainingResult, fit: dict | None, key: str, figures: dict) -> dict:
    """One network result: headline against the Lasso, the runs as a table, objective curves."""
    lasso_objective = net.lasso.get("objective", (fit or {}).get("objective"))
    lower = net.lasso.get("lower_bound", ((fit or {}).get("certificate") or {}).get("lower_bound"))
    runs, best = [r.to_dict() for r in net.runs], net.best_run()
    curves = training_curves(net)
    if curves:
        figures[key] = plots.training_figure(curves, lasso_objective, lower)
    diverged = sum(r.status == "diverged" for r in net.runs)
    columns = list(dict.fromkeys(k for r in runs for k, v in r.items()
                                 if not isinstance(v, (list, tuple, dict, np.ndarray))
                                 and any(q.get(k) is not None for q in runs)))
    headline = [("Lasso objective", lasso_objective), ("best training objective", _best(best)),
                ("relative gap", _gap(best)), ("certified lower bound", lower),
                *emergence_share(net.emergence).items()]
    return {"depth": net.depth, "figure": key if curves else None,
            "status": net.status if not diverged else f"{diverged} of {len(runs)} diverged",
            "headline": [(k, fmt(v)) for k, v in headline if v is not None],
            "runs": {"columns": columns, "rows": [[fmt(r.get(c)) for c in columns] for r in runs]} if runs else None,
            "rows": scalars(net.to_dict(), skip=("runs", "depth", "status", "lasso"))}


def _best(run: TrainingRun | None):
    return None if run is None else run.best_objective


def _ci(value, lo, hi) -> str:
    return f"{fmt(value, 3)} [{fmt(lo, 3)}, {fmt(hi, 3)}]"


def linear_baseline(pts: Points | None) -> dict | None:
    """Test R^2 of ordinary least squares on the reduced training points (the baseline a fit must beat)."""
    if pts is None or len(pts.test_rows) < 2 or len(pts.train_rows) <= pts.d + 1:
        return None
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score
    X, y = pts.coords, pts.target
    if not np.all(np.isfinite(y)):
        return None
    model = LinearRegression().fit(X[pts.train_rows], y[pts.train_rows])
    return {"train_r2": float(r2_score(y[pts.train_rows], model.predict(X[pts.train_rows]))),
            "test_r2": float(r2_score(y[pts.test_rows], model.predict(X[pts.test_rows])))}


def findings(fits: list[dict], networks: list[TrainingResult], baseline: dict | None,
             signal: dict | None = None) -> list[dict]:
    """The claims the run can speak to, each with a verdict ("supported", "not supported", "cannot tell" or
    "fact") and its evidence in words: the target signal the reduction keeps, what the optimum selected,
    symmetry against chance and against the shallower depth, nested symmetry, trained neurons through
    training points and on the Lasso's planes."""
    out = []
    if isinstance(signal, dict) and signal.get("full_r2") is not None:
        out.append({"claim": "The reduction keeps the target signal", "verdict": "fact",
                    "evidence": f"a linear probe (ridge) reaches test R^2 {fmt(signal['full_r2'], 3)} on the full "
                                f"embedding and {fmt(signal['reduced_r2'], 3)} on the reduced points"})
    for fit in fits:
        depth, feats = int(fit["depth"]), fit["features"]
        kinds = ", ".join(f"{n} {k}" for k, n in feats["kind"].value_counts().items()) if len(feats) else "none"
        cert = fit.get("certificate") or {}
        test = (fit.get("metrics") or {}).get("test_r2")
        out.append({"claim": f"Depth {depth}: what the optimum selected", "verdict": "fact",
                    "evidence": f"{len(feats)} features ({kinds}); "
                                + ("a proven global optimum of the infinite-width network" if cert.get("exact")
                                   else "the optimum over the dictionary, an upper bound on the network optimum")
                                + (f"; test R^2 {fmt(test, 3)}" if test is not None else "")
                                + (f" (linear model on the same points: {fmt(baseline['test_r2'], 3)})"
                                   if baseline and test is not None else "")})
    for fit in fits:
        depth, sym = int(fit["depth"]), fit.get("symmetry") or {}
        own, nested = sym.get("own"), sym.get("multilevel")
        if isinstance(own, dict):
            out.append({"claim": f"Depth {depth}'s fit is mirror-symmetric about its own fold planes, beyond chance",
                        "verdict": own["above_chance"],
                        "evidence": f"mean score {_ci(own['mean'], own['lo'], own['hi'])} over {own['planes']} planes "
                                    f"(median {fmt(own['median_support'], 3)} training points mirrored onto data); "
                                    f"a mean over as many random planes through training points exceeds "
                                    f"{fmt(own['null_q95'], 3)} 5 % of the time"})
        if isinstance(sym.get("diff"), (int, float)) and sym.get("more_symmetric_than_shallower"):
            out.append({"claim": f"Depth {depth} is more symmetric than the shallower depth about the same planes",
                        "verdict": sym["more_symmetric_than_shallower"],
                        "evidence": f"mean difference in score {_ci(sym['diff'], sym['diff_lo'], sym['diff_hi'])} "
                                    f"over {sym['planes']} planes of every depth (paired bootstrap)"})
        if isinstance(nested, dict):
            out.append({"claim": f"Depth {depth}: symmetry within symmetry (nested mirror planes of depth-4 features)",
                        "verdict": nested["above_chance"],
                        "evidence": f"mean score {_ci(nested['mean'], nested['lo'], nested['hi'])} over "
                                    f"{nested['planes']} nested planes, each scored within its side; chance "
                                    f"(95th percentile) {fmt(nested['null_q95'], 3)}"})
    for fit in fits:
        pooled = stability_pooled(fit.get("stability"), int(fit["depth"]))
        if pooled:
            out.append(pooled)
    for net in networks:
        depth, em = net.depth, net.emergence or {}
        if isinstance(em, dict) and "share_through_point" in em:
            lo, hi = em["share_through_point_ci"]
            out.append({"claim": f"Trained depth-{depth} neurons pass through training points",
                        "verdict": _verdict(lo, hi, em["chance_through_point"]),
                        "evidence": f"contribution-weighted share {_ci(em['share_through_point'], lo, hi)} against "
                                    f"{fmt(em['chance_through_point'], 2)} for random planes crossing the data"
                                    + _per_seed(em.get("share_through_point_per_network"))})
        if isinstance(em, dict) and "weighted_share_on_predicted" in em:
            lo, hi = em["weighted_share_on_predicted_ci"]
            out.append({"claim": f"Trained depth-{depth} neurons land on the Lasso's planes",
                        "verdict": _verdict(lo, hi, em["chance_on_predicted"]),
                        "evidence": f"contribution-weighted share {_ci(em['weighted_share_on_predicted'], lo, hi)} "
                                    f"against {fmt(em['chance_on_predicted'], 2)} for random planes; "
                                    f"{fmt(em.get('lasso_recall'), 2)} of the Lasso's weight "
                                    "has a neuron on its plane"
                                    + _per_seed(em.get("weighted_share_on_predicted_per_network"))})
        gap = _gap(net.best_run())
        if gap is not None:
            out.append({"claim": f"Depth {depth}: gradient training reaches the convex optimum",
                        "verdict": "supported" if gap <= 0.01 else "not supported",
                        "evidence": f"the best trained network ends {fmt(100 * gap, 3)} % "
                                    f"{'above' if gap >= 0 else 'below'} the Lasso objective"
                                    + (": the convex fit finds what training misses" if gap > 0.01 else "")})
    return out


def _per_seed(shares) -> str:
    """``; per seed 0.62, 0.70, 0.55`` for the shares of several trained networks, else nothing."""
    shares = [fmt(v, 2) for v in shares or []]
    return f"; per seed {', '.join(shares)}" if len(shares) > 1 else ""


def stability_pooled(stab, depth: int) -> dict | None:
    """The finding on a depth's stability (``analysis.stability.pooled_same``): the share of (plane, resample)
    pairs reselecting the plane's defining texts, against a permuted target's mean share."""
    from analysis.stability import pooled_same
    p = pooled_same(stab) if isinstance(stab, dict) and stab.get("features") else None
    if p is None:
        return None
    ref = p["permuted"]
    return {"claim": f"Depth {depth}'s planes are defined by the same texts across resamples, more often than for "
                     "a permuted target",
            "verdict": _verdict(p["lo"], p["hi"], ref) if ref is not None else "fact",
            "evidence": f"the same defining texts (or an equivalent feature) in {p['k']} of {p['n']} (plane, resample) "
                        "pairs that kept them, "
                        f"{_ci(p['share'], p['lo'], p['hi'])} (Wilson, pooled over {p['planes']} planes, so somewhat "
                        f"optimistic)" + (f", against {fmt(ref, 2)} for a randomly permuted target" if ref is not None
                                          else "")}


def _verdict(lo, hi, chance) -> str:
    from analysis.symmetry import verdict
    return verdict(lo, hi, chance)


def plane_rows(fit: dict, pts: Points | None, nearest: int = 2) -> list[dict]:
    """The depth's own mirror planes: texts on each side, the texts nearest the plane on both sides, the
    fit's symmetry about it on the data support against random planes (from the symmetry step's table), and
    how stable its feature is across resamples (the stability step's entry; numbered as the features table)."""
    table = (fit.get("symmetry") or {}).get("table") or []
    depth = int(fit["depth"])
    stab = fit.get("stability") if isinstance(fit.get("stability"), dict) else {}
    by_id = {e["id"]: e for e in stab.get("features", [])}
    ranks = {str(i): k + 1 for k, i in enumerate(fit["features"]["id"])} if len(fit["features"]) else {}
    rows = []
    for r in table:
        if r.get("source_depth") != depth or int(r.get("depth", -1)) != depth:
            continue
        words = stability_texts(by_id.get(r.get("id")), stab)
        row = {"feature": ranks.get(r.get("id"), (r.get("feature") or 0) + 1), "level": r.get("level", 1),
               "stability": "; ".join(t for t in (words["same"], words["near"]) if t) or "—",
               "score": _ci(r["score"], r["lo"], r["hi"]),
               "null": fmt(r.get("null_q95"), 3), "p": fmt(r.get("p_value"), 2), "support": fmt(r.get("n_support")),
               "left": [], "right": [], "n_left": "—", "n_right": "—"}
        if pts is not None and len(r["w"]) == pts.d:
            t = pts.X_train @ np.asarray(r["w"], dtype=float) + float(r["b"])
            left, right = np.flatnonzero(t < 0), np.flatnonzero(t >= 0)
            row.update(n_left=fmt(len(left)), n_right=fmt(len(right)),
                       left=[pts.describe(int(p)) for p in left[np.argsort(-t[left])][:nearest]],
                       right=[pts.describe(int(p)) for p in right[np.argsort(t[right])][:nearest]])
        rows.append(row)
    return rows


def summary(bundle: dict, pts: Points | None) -> dict:
    """Headline numbers and detail tables: corpus, model, reduction, config, timings, versions."""
    run = bundle.get("run") or {}
    info = run.get("info") or {}
    reduction = bundle.get("reduction") or {}
    ratio = reduction.get("explained_variance_ratio")
    explained = float(np.sum(ratio)) if ratio is not None and len(ratio) else (
        (info.get("reduction") or {}).get("explained_variance") if isinstance(info.get("reduction"), dict) else None)
    headline = [("status", run.get("status", "unknown"))]
    if pts is not None:
        headline += [("points", f"{len(pts.df):,} ({len(pts.train_rows):,} train, {len(pts.test_rows):,} test)"),
                     ("reduced dimension d", fmt(pts.d))]
    if explained is not None:
        headline.append(("explained variance", f"{100 * float(explained):.1f} %"))
    fits = bundle.get("fits") or []
    if fits:
        headline.append(("depths fitted", ", ".join(str(f["depth"]) for f in fits)))
    details = []
    for title, obj in (("corpus", info.get("corpus")), ("model", info.get("model")),
                       ("reduction", {**({"explained_variance_ratio": ratio} if ratio is not None else {}),
                                      **(info.get("reduction") if isinstance(info.get("reduction"), dict) else {}),
                                      **{k: v for k, v in reduction.items() if not isinstance(v, (list, dict))}}),
                       ("timings (s)", run.get("timings")), ("versions", run.get("versions"))):
        rows = scalars(obj)
        if rows:
            details.append({"title": title, "rows": rows})
    other = {k: v for k, v in info.items() if k not in ("corpus", "model", "reduction")}
    if other:
        details.append({"title": "run info", "rows": scalars(other)})
    config = run.get("config")
    return {"headline": headline, "details": details,
            "config": json.dumps(config, indent=2, sort_keys=True, default=str) if config else None}


CERTIFICATE_LABELS = {"scope": "scope", "exact": "proven network optimum",
                      "dictionary_ratio": "dictionary ratio (KKT)", "duality_gap": "dictionary duality gap",
                      "continuum_ratio": "continuum ratio", "continuum_method": "continuum method",
                      "lower_bound": "certified lower bound on the network optimum",
                      "upper_bound": "upper bound (this objective)",
                      "gap": "certified gap to the network optimum", "tol": "tolerance"}


def certificate_view(cert) -> dict | None:
    """The certificate: its statement, an exact/restriction badge and its numbers."""
    if not isinstance(cert, dict) or not cert:
        return None
    return {"statement": cert.get("statement"), "exact": bool(cert.get("exact")),
            "rows": [(label, fmt(cert[k])) for k, label in CERTIFICATE_LABELS.items() if cert.get(k) is not None]}


def report_context(bundle: dict, max_planes: int = 12) -> tuple[dict, dict]:
    """``(context, figures)`` of a run report; ``figures`` maps a plot id to a Plotly figure."""
    run = bundle.get("run") or {}
    df = bundle.get("points")
    pts = Points(df) if isinstance(df, pd.DataFrame) and len(df) else None
    fits = [normalise_fit(f) for f in sorted(bundle.get("fits") or [], key=lambda f: f["depth"])]
    networks = sorted(map(TrainingResult.from_dict, bundle.get("networks") or []), key=lambda n: n.depth)
    figures = {}
    has_test = pts is not None and len(pts.test_rows) > 0
    if pts is not None:
        figures["data"] = plots.data_figure(pts.d, pts.target, has_test)
    depths = []
    for fit in fits:
        depth = int(fit["depth"])
        rows = feature_rows(fit, pts)
        view = {"depth": depth, "features": rows, "n_features": len(rows), "path": None, "function": None,
                "has_mirrors": any(r["mirrors"] for r in rows),
                "certificate": certificate_view(fit.get("certificate")), "metrics": metric_table(fit.get("metrics")),
                "headline": [("beta", fmt(fit.get("beta"))), ("beta_max", fmt(fit.get("beta_max"))),
                             ("objective", fmt(fit.get("objective"), 6)), ("intercept", fmt(fit.get("intercept"))),
                             ("selected features", fmt(len(rows))), ("candidates", fmt(fit.get("n_candidates")))],
                "kinds": {k: int(v) for k, v in fit["features"]["kind"].value_counts().items()} if len(rows) else {},
                "planes": plane_rows(fit, pts), "stability": stability_summary(fit.get("stability")),
                "timings": scalars(fit.get("timings"))}
        path = fit.get("path")
        if isinstance(path, pd.DataFrame) and len(path) and {"beta", "objective", "n_features"} <= set(path.columns):
            figures[f"path{depth}"] = plots.path_figure(path, fit.get("beta"))
            view["path"] = f"path{depth}"
        if pts is not None and fit.get("intercept") is not None:
            pairs = [(m["source_xy"], m["image"][:2],
                      f"{r['id']}: #{m['source_point']['idx']} → image, nearest #{m['nearest_point']['idx']}")
                     for r in rows[:max_planes] for m in r["mirrors"]] if pts.d > 1 else []
            fig, caption = plots.function_figure(fit, pts.coords, pts.target, has_test, pairs, max_planes)
            figures[f"function{depth}"] = fig
            view["function"], view["function_caption"] = f"function{depth}", caption
        depths.append(view)
    trainings = [training_view(net, next((f for f in fits if int(f["depth"]) == net.depth), None),
                               f"training{i}", figures) for i, net in enumerate(networks)]
    baseline = linear_baseline(pts)
    context = {"run": run, "run_id": str(run.get("run_id", "")), "status": str(run.get("status", "unknown")),
               "findings": findings(fits, networks, baseline, (run.get("info") or {}).get("signal")),
               "baseline": baseline,
               "error": run.get("error"), "summary": summary(bundle, pts),
               "points": None if pts is None else {"n": len(pts.df), "n_train": len(pts.train_rows), "d": pts.d},
               "data_figure": "data" if "data" in figures else None, "depths": depths,
               "comparison": comparison_table(fits, networks) if len(fits) + len(networks) > 1 else None,
               "trainings": trainings, "payload_points": pts.payload() if pts is not None else None}
    log.info("report of run %s: %d points, %d depths, %d trainings, %d figures", context["run_id"],
             0 if pts is None else len(pts.df), len(depths), len(trainings), len(figures))
    return context, figures

