"""Full-batch training of the abs networks and the comparison with the Lasso optimum (docs/MATH.md sections 1, 4).

Objective: ``1/2 ||f(X) - y||^2 + (beta/L) * penalty()`` (``AbsNet.objective``). A run whose
objective turns NaN or infinite is marked ``diverged`` and never reported as a result.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from tqdm.auto import tqdm

from .emergence import emergence
from .network import AbsNet, FCAbsNet, ParallelAbsNet, _check_beta
from .records import TrainingResult, TrainingRun

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "lbfgs")
DEFAULT_LR = {"adam": 1e-2, "lbfgs": 1.0}
WITHIN = 0.01          # "within 1%" of the target objective


class TrainingDiverged(RuntimeError):
    """Every seed of a training run produced a NaN or infinite objective."""


class BelowGlobalOptimum(RuntimeError):
    """A network objective lies below a proven lower bound: a bug in the objective or the bound."""


@dataclass
class SeedRun:
    """One seed: its status, best objective, objective curve (one value per epoch) and timings."""

    seed: int | None
    status: str
    best_objective: float | None
    epochs: int
    wall_time_s: float
    time_to_target_s: float | None
    curve: list[float] = field(repr=False)


@dataclass
class TrainResult:
    """Best of several seeds; ``net`` is the trained copy with the best objective (None if all diverged), ``nets``
    every seed's trained copy that did not diverge (at its best objective), in the order of ``runs``."""

    status: str
    best_objective: float | None
    best_seed: int | None
    wall_time_s: float
    time_to_target_s: float | None
    target: float | None
    optimizer: str
    runs: list[SeedRun]
    net: AbsNet | None = field(default=None, repr=False)
    nets: list[AbsNet] = field(default_factory=list, repr=False)

    @property
    def curve(self) -> list[float]:
        """Objective per epoch of the best seed."""
        best = [r for r in self.runs if r.seed == self.best_seed and r.status == "ok"]
        return best[0].curve if best else []

    def to_dict(self) -> dict:
        """JSON-able summary (curves included, network left out)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("net", "nets", "runs")}
        out["runs"] = [asdict(r) for r in self.runs]
        return out


class _Diverged(Exception):
    pass


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU; an explicit CUDA request without CUDA is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available")
    return device


def _check_data(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).reshape(-1)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (points x dimensions), got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} values")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite (found NaN or inf)")
    return X, y


def _check_options(optimizer: str, lr: float | None, max_epochs: int, plateau) -> tuple[float, int, float]:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
    if not lr > 0 or not np.isfinite(lr):
        raise ValueError(f"lr (learning rate) must be positive and finite, got {lr}")
    if int(max_epochs) < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
    patience, rel_tol = plateau
    if int(patience) < 1 or not rel_tol >= 0:
        raise ValueError(f"plateau must be (patience >= 1, rel_tol >= 0), got {plateau}")
    return lr, int(patience), float(rel_tol)


def _run_seed(net: AbsNet, X: torch.Tensor, y: torch.Tensor, beta: float, optimizer: str, lr: float,
              max_epochs: int, patience: int, rel_tol: float, target: float | None, t_offset: float,
              bar) -> tuple[SeedRun, list | None]:
    """Train ``net`` in place; returns the run record and the parameters with the best objective."""
    params = [p for p in net.parameters()]
    opt = (torch.optim.Adam(params, lr=lr) if optimizer == "adam"
           else torch.optim.LBFGS(params, lr=lr, max_iter=20, line_search_fn="strong_wolfe"))
    goal = None if target is None else target + WITHIN * abs(target)
    state = {"best": np.inf, "params": None, "hit": None}
    t0 = time.perf_counter()

    def closure():
        opt.zero_grad()
        loss = net.objective(X, y, beta)
        value = float(loss.item())
        if not np.isfinite(value):
            raise _Diverged
        if value < state["best"]:
            state["best"] = value
            state["params"] = [p.detach().clone() for p in params]
            if goal is not None and state["hit"] is None and value <= goal:
                state["hit"] = t_offset + time.perf_counter() - t0
        loss.backward()
        return loss

    curve, status, stale, ref = [], "ok", 0, np.inf
    for _ in range(max_epochs):
        try:
            value = float(opt.step(closure).item())
        except _Diverged:
            status = "diverged"
            break
        curve.append(value)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(objective=f"{state['best']:.6g}", refresh=False)
        if not np.isfinite(ref) or state["best"] < ref - rel_tol * abs(ref):
            ref, stale = state["best"], 0
        else:
            stale += 1
            if stale >= patience:
                break
    wall = time.perf_counter() - t0
    ok = status == "ok" and state["params"] is not None
    run = SeedRun(None, status if ok else "diverged", state["best"] if ok else None, len(curve), wall,
                  state["hit"] if ok else None, curve)
    return run, (state["params"] if ok else None)


def train(net: AbsNet, X, y, beta: float, optimizer: str = "adam", lr: float | None = None,
          max_epochs: int = 5000, seeds=None, plateau: tuple[int, float] = (200, 1e-7),
          target: float | None = None, device: str = "auto", progress: bool = True) -> TrainResult:
    """Full-batch training of copies of ``net`` on ``1/2 ||f(X) - y||^2 + (beta/L) penalty``.

    ``seeds=None`` trains from the net's current parameters; otherwise one copy per seed is
    re-initialised with ``reset_parameters(seed)``. Stops a seed after ``max_epochs`` or when the
    best objective has not improved by ``rel_tol`` (relative) for ``patience`` epochs.
    ``time_to_target_s`` counts from the start of the first seed until an objective within 1% of
    ``target``. Raises ``TrainingDiverged`` when every seed produced NaN or inf.
    """
    beta = _check_beta(beta)
    lr, patience, rel_tol = _check_options(optimizer, lr, max_epochs, plateau)
    X, y = _check_data(X, y)
    if X.shape[1] != net.d:
        raise ValueError(f"X has {X.shape[1]} columns but the network expects d={net.d}")
    dev = resolve_device(device)
    seed_list = [None] if seeds is None else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds must be None or a non-empty sequence of integers")
    runs, nets, best_net, best_value, elapsed = [], [], None, np.inf, 0.0
    bar = tqdm(total=max_epochs * len(seed_list), desc=f"train {type(net).__name__} L={net.depth} m={net.width}",
               disable=not progress, leave=False)
    try:
        for seed in seed_list:
            model = copy.deepcopy(net).to(dev)
            if seed is not None:
                model.reset_parameters(seed)
            Xt, yt = model.as_tensor(X), model.as_tensor(y)
            run, params = _run_seed(model, Xt, yt, beta, optimizer, lr, max_epochs, patience, rel_tol,
                                    target, elapsed, bar)
            run.seed = seed
            elapsed += run.wall_time_s
            runs.append(run)
            logger.info("seed %s: %s, best objective %s after %d epochs (%.2f s)", seed, run.status,
                        run.best_objective, run.epochs, run.wall_time_s)
            if params is not None:
                with torch.no_grad():
                    for p, q in zip(model.parameters(), params):
                        p.copy_(q)
                nets.append(model)
                if run.best_objective < best_value:
                    best_net, best_value = model, run.best_objective
    finally:
        bar.close()
    ok = [r for r in runs if r.status == "ok"]
    if not ok:
        raise TrainingDiverged(f"training diverged (NaN or inf objective) for every seed {seed_list} "
                               f"with {optimizer} lr={lr}; lower the learning rate")
    best = min(ok, key=lambda r: r.best_objective)
    hits = [r.time_to_target_s for r in ok if r.time_to_target_s is not None]
    return TrainResult("ok", best.best_objective, best.seed, elapsed, min(hits) if hits else None, target,
                       optimizer, runs, best_net, nets)


def stationarity(net: AbsNet, X, y, beta: float, n_random: int = 64, step: float = 1e-6, seed: int = 0) -> dict:
    """First-order optimality at the current parameters, kinks included.

    ``min_directional_derivative``: the smallest one-sided derivative ``F'(theta; d)`` of the objective
    over every +-coordinate and ``n_random`` random unit directions (Richardson-extrapolated forward
    differences; >= 0 up to rounding at a local minimum, where autograd's ``sign(0) = 0`` gradient
    need not vanish). ``smooth_gradient_norm``: the gradient in the output layer (``alpha``, ``xi``),
    where the objective is smooth.
    """
    beta = _check_beta(beta)
    X, y = _check_data(X, y)
    Xt, yt = net.as_tensor(X), net.as_tensor(y)
    params = [p for p in net.parameters() if p.numel()]
    theta = torch.nn.utils.parameters_to_vector(params).detach().clone()
    net.zero_grad()
    F0 = net.objective(Xt, yt, beta)
    F0.backward()
    smooth = torch.cat([net.alpha.grad.reshape(-1), net.xi.grad.reshape(-1)]).norm().item()
    g = torch.Generator().manual_seed(int(seed))
    rand = torch.randn(n_random, theta.numel(), generator=g, dtype=theta.dtype).to(theta.device)
    rand /= rand.norm(dim=1, keepdim=True)

    def directions():
        for i in range(theta.numel()):
            for sign in (1.0, -1.0):
                d = torch.zeros_like(theta)
                d[i] = sign
                yield d
        yield from rand

    f0, worst, count = F0.item(), np.inf, 0
    with torch.no_grad():
        for d in directions():
            vals = []
            for t in (step, step / 2):
                torch.nn.utils.vector_to_parameters(theta + t * d, params)
                vals.append((net.objective(Xt, yt, beta).item() - f0) / t)
            worst, count = min(worst, 2 * vals[1] - vals[0]), count + 1
        torch.nn.utils.vector_to_parameters(theta, params)
    net.zero_grad()
    return {"objective": f0, "smooth_gradient_norm": smooth, "min_directional_derivative": float(worst),
            "n_directions": count}


def relative_gap(value: float, reference: float) -> float:
    """``(value - reference) / max(|reference|, tiny)``."""
    return (value - reference) / max(abs(reference), np.finfo(float).tiny)


def compare_with_lasso(X, y, depth: int, beta: float, lasso_objective: float, lower_bound: float | None = None,
                       widths=(16,), seeds=(0, 1, 2), architectures=("parallel", "fc"), optimizer: str = "adam",
                       lr: float | None = None, max_epochs: int = 5000, plateau: tuple[int, float] = (200, 1e-7),
                       bias: bool = True, lasso_time_s: float | None = None, features=None, tol: float = 1e-6,
                       dtype=torch.float64, device: str = "auto", progress: bool = True) -> TrainingResult:
    """Non-convex training of each architecture and width against the Lasso of the same depth and beta.

    Returns a ``TrainingResult`` (``to_dict`` for its JSON-able form); per run: best objective, relative
    gap to the Lasso objective (and to ``lower_bound`` when given), wall time,
    time until within 1% of the Lasso objective, the
    objective curve of each seed, and ``status`` ("ok" or "diverged": no objective then). With
    ``features`` (the Lasso's ``features_`` table) also each run's ``emergence`` summary (over its seeds) and, at the
    top, the best parallel run's ``emergence``. Raises ``BelowGlobalOptimum`` when the parallel network ends below a
    proven bound by more than ``tol`` (relative): the 1-D Lasso objective, or ``lower_bound``.
    """
    X, y = _check_data(X, y)
    beta = _check_beta(beta)
    if int(depth) < 2:
        raise ValueError(f"depth must be >= 2, got {depth}")
    if not np.isfinite(lasso_objective):
        raise ValueError(f"lasso_objective must be finite, got {lasso_objective}")
    unknown = set(architectures) - {"parallel", "fc"}
    if unknown:
        raise ValueError(f"architectures must be 'parallel' and/or 'fc', got {sorted(unknown)}")
    for width in widths:
        if int(width) < 1:
            raise ValueError(f"width must be >= 1, got {width}")
    _check_options(optimizer, lr, max_epochs, plateau)
    n, d = X.shape
    proven = [("lasso_objective", lasso_objective)] if d == 1 else []
    if lower_bound is not None:
        proven.append(("lower_bound", lower_bound))
    runs, best = [], None
    for arch in architectures:
        cls = ParallelAbsNet if arch == "parallel" else FCAbsNet
        for width in widths:
            net = cls(d, depth, int(width), bias=bias, dtype=dtype)
            row = {"architecture": arch, "width": int(width), "optimizer": optimizer}
            try:
                res = train(net, X, y, beta, optimizer=optimizer, lr=lr, max_epochs=max_epochs, seeds=seeds,
                            plateau=plateau, target=lasso_objective, device=device, progress=progress)
            except TrainingDiverged as err:
                logger.warning("%s width %d: %s", arch, width, err)
                runs.append({**row, "status": "diverged", "best_objective": None, "relative_gap": None,
                             "gap_to_lower_bound": None, "wall_time_s": None, "time_to_1pct_s": None,
                             "best_seed": None, "epochs": None})
                continue
            if arch == "parallel":
                for name, bound in proven:
                    if res.best_objective < bound - tol * max(abs(bound), 1.0):
                        raise BelowGlobalOptimum(
                            f"parallel network (depth {depth}, width {width}) reached objective "
                            f"{res.best_objective:.12g} below the proven {name} {bound:.12g}: "
                            "the network objective or the bound is wrong")
                if best is None or res.best_objective < best.best_objective:
                    best = res
            ok = [r for r in res.runs if r.status == "ok"]
            runs.append({**row, "status": "ok", "best_objective": res.best_objective,
                         "relative_gap": relative_gap(res.best_objective, lasso_objective),
                         "gap_to_lower_bound": (None if lower_bound is None
                                                else relative_gap(res.best_objective, lower_bound)),
                         "wall_time_s": res.wall_time_s, "time_to_1pct_s": res.time_to_target_s,
                         "best_seed": res.best_seed,
                         "epochs": next(r.epochs for r in ok if r.seed == res.best_seed),
                         "seeds": [r.seed for r in ok], "curves": [r.curve for r in ok]})
            if features is not None:
                runs[-1]["emergence"] = emergence(res.nets, X, features).summary
            logger.info("%s width %d: objective %.6g, gap %.3g to the Lasso", arch, width,
                        res.best_objective, runs[-1]["relative_gap"])
    out = TrainingResult(depth=int(depth), beta=beta, n_points=int(n), dim=int(d), bias=bool(bias),
                         status="ok" if any(r["status"] == "ok" for r in runs) else "diverged",
                         lasso={"objective": float(lasso_objective), "wall_time_s": lasso_time_s,
                                "lower_bound": None if lower_bound is None else float(lower_bound)},
                         runs=[TrainingRun.from_dict(r) for r in runs])
    if features is not None and best is not None:
        out.emergence = emergence(best.nets, X, features).summary
    return out
