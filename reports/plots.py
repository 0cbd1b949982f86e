"""Plotly figures of a run report.

Traces of the training/test points carry ``meta="points:train"`` (or ``"points:test"``) and no
data: the page fills them from one shared array of points, so texts are stored once per page.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import diverging, sequential

from analysis import evaluate_features

from .features import fold_levels

GRID = 121
MAX_CURVE_POINTS = 400
FONT = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
MIRROR = dict(color="#3b3b3b", width=1.2, dash="dash")
ZERO = dict(color="#111111", width=1.6)

TEMPLATE = go.layout.Template(layout=go.Layout(
    font=dict(family=FONT, size=12, color="#222"), paper_bgcolor="white", plot_bgcolor="white",
    margin=dict(l=60, r=20, t=30, b=50), hoverlabel=dict(font=dict(family=FONT, size=12), align="left"),
    xaxis=dict(showline=True, linecolor="#999", ticks="outside", gridcolor="#eee", zeroline=False),
    yaxis=dict(showline=True, linecolor="#999", ticks="outside", gridcolor="#eee", zeroline=False),
    legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, bgcolor="rgba(255,255,255,0.8)"),
    colorway=["#1f5fa8", "#d1495b", "#3a9b6d", "#edae49", "#6b4c9a", "#00798c", "#8d6a40"]))


def coloraxis(target: np.ndarray) -> dict:
    """One colour scale for targets and fitted values: diverging about 0 when targets change sign."""
    t = np.asarray(target, dtype=float)
    t = t[np.isfinite(t)]
    lo, hi = (float(t.min()), float(t.max())) if t.size else (0.0, 1.0)
    if lo < 0 < hi:
        m = max(-lo, hi)
        return dict(colorscale=_scale(diverging.RdBu), cmin=-m, cmax=m, cmid=0.0,
                    colorbar=dict(title=dict(text="target"), thickness=12))
    return dict(colorscale=_scale(sequential.Viridis), cmin=lo, cmax=hi if hi > lo else lo + 1,
                colorbar=dict(title=dict(text="target"), thickness=12))


def _scale(colors) -> list:
    return [[i / (len(colors) - 1), c] for i, c in enumerate(colors)]


def _point_traces(has_test: bool, size: int = 6) -> list[go.Scatter]:
    """Empty train/test traces the page fills from the shared points (``meta``)."""
    marker = dict(coloraxis="coloraxis", size=size, line=dict(color="rgba(30,30,30,0.55)", width=0.6))
    traces = [go.Scatter(mode="markers", name="train", meta="points:train", marker=marker,
                         hovertemplate="%{text}<extra></extra>")]
    if has_test:
        traces.append(go.Scatter(mode="markers", name="test", meta="points:test",
                                 marker=dict(marker, symbol="diamond", line=dict(color="#222", width=0.8)),
                                 hovertemplate="%{text}<extra></extra>"))
    return traces


def point_xy(coords: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plotted position of each point: its first two coordinates, or (x, target) in 1-D."""
    return (coords[:, 0], target) if coords.shape[1] == 1 else (coords[:, 0], coords[:, 1])


def _axes(d: int) -> tuple[str, str]:
    return ("coordinate 1", "target" if d == 1 else "coordinate 2")


def data_figure(d: int, target: np.ndarray, has_test: bool) -> go.Figure:
    """The reduced points coloured by target, texts on hover."""
    fig = go.Figure(_point_traces(has_test))
    xt, yt = _axes(d)
    fig.update_layout(coloraxis=coloraxis(target), height=520, xaxis_title=xt, yaxis_title=yt,
                      hovermode="closest")
    return fig


def log_axis(values) -> dict:
    """A log axis whose tick labels are full numbers in one format (``~g``: 0.05, 20, 500): plotly's
    linear steps within a decade, 1, 2, 5 per decade over up to two decades, powers of ten beyond."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    decades = float(np.log10(v.max() / v.min())) if v.size else 0.0
    return dict(type="log", tickformat="~g", **({} if decades < 1 else {"dtick": "D2" if decades <= 2 else 1}))


def path_figure(path: pd.DataFrame, beta: float | None) -> go.Figure:
    """Number of selected features and objective against beta (log scale)."""
    path = path.sort_values("beta")
    fig = go.Figure([
        go.Scatter(x=path["beta"], y=path["n_features"], name="selected features", mode="lines+markers",
                   line=dict(shape="hv", color="#1f5fa8"), marker=dict(size=5),
                   hovertemplate="beta %{x:.4g}<br>%{y} features<extra></extra>"),
        go.Scatter(x=path["beta"], y=path["objective"], name="objective", yaxis="y2", mode="lines+markers",
                   line=dict(color="#d1495b"), marker=dict(size=5),
                   hovertemplate="beta %{x:.4g}<br>objective %{y:.5g}<extra></extra>")])
    fig.update_layout(height=340, xaxis=dict(log_axis(np.r_[path["beta"], beta or np.nan]), title="beta"),
                      yaxis=dict(title=dict(text="selected features", font=dict(color="#1f5fa8")), rangemode="tozero"),
                      yaxis2=dict(title=dict(text="objective", font=dict(color="#d1495b")), overlaying="y",
                                  side="right", showgrid=False, showline=True, linecolor="#999", ticks="outside",
                                  tickmode="auto", nticks=6, tickformat=".3g"),
                      margin=dict(r=70), hovermode="x unified")
    if beta is not None and np.isfinite(beta) and beta > 0:
        fig.add_vline(x=beta, line=dict(color="#777", dash="dot", width=1))
    return fig


def _clip(a: float, c: float, k: float, box) -> tuple | None:
    """Segment of the line ``a x + c y + k = 0`` inside ``box = (x0, x1, y0, y1)``."""
    x0, x1, y0, y1 = box
    pts = []
    if abs(c) > 1e-12:
        pts += [(x, -(k + a * x) / c) for x in (x0, x1)]
    if abs(a) > 1e-12:
        pts += [(-(k + c * y) / a, y) for y in (y0, y1)]
    tol = 1e-9 * max(x1 - x0, y1 - y0)
    pts = [p for p in pts if x0 - tol <= p[0] <= x1 + tol and y0 - tol <= p[1] <= y1 + tol]
    if len(pts) < 2:
        return None
    far = max(((p, q) for p in pts for q in pts), key=lambda pq: np.hypot(pq[0][0] - pq[1][0], pq[0][1] - pq[1][1]))
    return far if far[0] != far[1] else None


def _lines(segments: list, style: dict, name: str) -> go.Scatter:
    """All segments ``((x0, y0), (x1, y1), label)`` as one trace with gaps."""
    xs, ys, text = [], [], []
    for (p, q, label) in segments:
        xs += [p[0], q[0], None]
        ys += [p[1], q[1], None]
        text += [label, label, None]
    return go.Scatter(x=xs, y=ys, mode="lines", line=style, name=name, text=text, hoverinfo="text",
                      connectgaps=False)


def _padded(lo: float, hi: float, frac: float = 0.06) -> tuple[float, float]:
    pad = frac * ((hi - lo) or 1.0)
    return float(lo - pad), float(hi + pad)


def _plane_segments(features: pd.DataFrame, box, center: np.ndarray) -> tuple[list, list]:
    """Segments of the fold (mirror) planes and zero sets ``w.x + b = u`` of ``features`` inside
    ``box`` on the plane of the first two coordinates through ``center`` (vertical lines in 1-D)."""
    mirrors, zeros = [], []
    for _, feat in features.iterrows():
        w, b = np.asarray(feat["w"], dtype=float), float(feat["b"])
        for levels, out, what in zip(fold_levels(feat["offsets"]), (mirrors, zeros), ("fold plane", "zero set")):
            for u in levels:
                if len(w) == 1:                       # ||w|| = 1: the point x = (u - b) / w
                    seg = ((u - b) / w[0], box[2]), ((u - b) / w[0], box[3])
                else:
                    seg = _clip(w[0], w[1], float(w[2:] @ center[2:]) + b - u, box)
                if seg:
                    out.append((*seg, f"{feat['id']} · {what}"))
    return mirrors, zeros


def function_figure(fit: dict, coords: np.ndarray, target: np.ndarray, has_test: bool, pairs: list,
                    max_planes: int) -> tuple[go.Figure, str]:
    """The fitted function ``f`` over the plane of the first two coordinates (a line in 1-D) with
    the fold planes and zero sets of the ``max_planes`` largest features, and ``pairs`` ``(point,
    mirror image, label)`` joined by dotted lines; returns the figure and its caption."""
    features, d = fit["features"].head(max_planes), coords.shape[1]
    px, py = point_xy(coords, target)
    x0, x1 = _padded(np.nanmin(px), np.nanmax(px))
    center = coords.mean(axis=0)
    fig = go.Figure()
    if d == 1:
        xs = np.linspace(x0, x1, 4 * GRID)
        fx = evaluate_features(fit["features"], fit["intercept"], xs[:, None])
        y0, y1 = _padded(min(np.nanmin(py), fx.min()), max(np.nanmax(py), fx.max()))
        fig.add_trace(go.Scatter(x=xs, y=fx, mode="lines", name="f(x)", line=dict(color="#1f5fa8", width=2.2),
                                 hovertemplate="x %{x:.4g}<br>f %{y:.4g}<extra></extra>"))
        caption = "The fitted function f over the data range (d = 1), the targets as points."
    else:
        y0, y1 = _padded(np.nanmin(py), np.nanmax(py))
        gx, gy = np.linspace(x0, x1, GRID), np.linspace(y0, y1, GRID)
        G = np.repeat(center[None, :], GRID * GRID, axis=0)
        G[:, 0], G[:, 1] = np.tile(gx, GRID), np.repeat(gy, GRID)
        z = evaluate_features(fit["features"], fit["intercept"], G).reshape(GRID, GRID)
        fig.add_trace(go.Heatmap(x=gx, y=gy, z=z.astype(np.float32), coloraxis="coloraxis", zsmooth="fast",
                                 hovertemplate="(%{x:.3g}, %{y:.3g})<br>f = %{z:.4g}<extra></extra>"))
        caption = "The fitted function f over the plane of coordinates 1 and 2" + (
            "." if d == 2 else f"; d = {d}: a 2-D slice through the data mean (coordinates 3 to {d} held "
                              "at their mean), points and mirror images projected onto it.")
    mirrors, zeros = _plane_segments(features, (x0, x1, y0, y1), center)
    folds = bool(len(features)) and bool(features["offsets"].map(len).any())
    legend = []
    if mirrors:
        fig.add_trace(_lines(mirrors, MIRROR, "fold (mirror) planes"))
        legend.append("dashed: fold (mirror) planes")
    if zeros:
        fig.add_trace(_lines(zeros, ZERO, "zero sets of the features" if folds else "selected planes"))
        legend.append("solid: where a feature is zero" if folds else "solid: the selected planes")
    if pairs:
        fig.add_trace(_lines(pairs, dict(color="#6b4c9a", width=1, dash="dot"), "point → mirror image"))
        fig.add_trace(go.Scatter(x=[q[0] for _, q, _ in pairs], y=[q[1] for _, q, _ in pairs], mode="markers",
                                 name="mirror images", text=[t for *_, t in pairs], hoverinfo="text",
                                 marker=dict(symbol="x-thin", size=9, line=dict(width=2, color="#6b4c9a"))))
        legend.append("crosses: mirror images of defining points")
    for tr in _point_traces(has_test, size=5):
        fig.add_trace(tr)
    if legend:
        caption += " " + "; ".join(legend).capitalize() + "."
    if len(fit["features"]) > len(features):
        caption += f" Planes drawn for the {len(features)} largest of {len(fit['features'])} features."
    xt, yt = _axes(d)
    fig.update_layout(coloraxis=dict(coloraxis(target), colorbar=dict(title=dict(text="f / target"), thickness=12)),
                      height=560, xaxis=dict(title=xt, range=[x0, x1]), yaxis=dict(title=yt, range=[y0, y1]),
                      hovermode="closest")
    return fig, caption


def training_figure(curves: list[tuple[str, list]], lasso_objective: float | None,
                    lower_bound: float | None) -> go.Figure:
    """Objective curves ``(name, values)`` of non-convex training against the Lasso optimum."""
    fig = go.Figure()
    curves = [(name, np.asarray(c, dtype=float)) for name, c in curves]
    for name, c in curves:
        step = max(1, int(np.ceil(len(c) / MAX_CURVE_POINTS)))
        x = np.unique(np.r_[np.arange(0, len(c), step), len(c) - 1])
        fig.add_trace(go.Scatter(x=x, y=c[x], mode="lines", name=name, line=dict(width=1.4),
                                 hovertemplate="step %{x}<br>objective %{y:.5g}"))
    steps = max((len(c) for _, c in curves), default=1) - 1
    for value, name, dash in ((lasso_objective, "Lasso optimum", "dash"),
                              (lower_bound, "certified lower bound", "dot")):
        if value is not None and np.isfinite(value):
            fig.add_trace(go.Scatter(x=[0, steps], y=[value, value], mode="lines", name=f"{name} {value:.5g}",
                                     line=dict(color="#111", dash=dash, width=1.4), hoverinfo="name"))
    positive = all((c > 0).all() for _, c in curves) and all(v is None or v > 0 for v in (lasso_objective, lower_bound))
    values = [c for _, c in curves] + [[v] for v in (lasso_objective, lower_bound) if v is not None]
    fig.update_layout(height=340, xaxis_title="step", yaxis=dict(
        title="training objective", **(log_axis(np.concatenate(values)) if positive and curves else {})))
    return fig
