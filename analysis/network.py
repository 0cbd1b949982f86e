"""Deep absolute-value networks in PyTorch and their reconstruction from a Lasso solution.

``ParallelAbsNet`` is the architecture the Lasso is equivalent to (docs/MATH.md section 1):
``f(x) = xi + sum_k alpha_k h_k(x)``, each unit a chain ``h = |v_{L-2} ... |v_1 |w.x + b| + b_1| ... + b_{L-2}|``.
``FCAbsNet`` is the ordinary fully connected network of the same depth. Both are trained on
``1/2 ||f(X) - y||^2 + (beta/L) * penalty()`` with biases free.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from .features import FoldFeatures

logger = logging.getLogger(__name__)


def _check_shape(d: int, depth: int, width: int, allow_empty: bool = False) -> None:
    if int(d) < 1:
        raise ValueError(f"d (input dimension) must be >= 1, got {d}")
    if int(depth) < 2:
        raise ValueError(f"depth must be >= 2, got {depth}")
    if int(width) < (0 if allow_empty else 1):
        raise ValueError(f"width must be >= 1, got {width}")


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not beta > 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be a positive finite number, got {beta}")
    return beta


class AbsNet(nn.Module):
    """Shared part of the two architectures: data conversion and the regularised objective."""

    depth: int

    def _param(self, *shape: int) -> nn.Parameter:
        return nn.Parameter(torch.zeros(*shape, dtype=self.dtype))

    @property
    def device(self) -> torch.device:
        return self.xi.device

    def as_tensor(self, a) -> torch.Tensor:
        """``a`` as a tensor of this network's dtype and device."""
        return torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a, dtype=self.dtype, device=self.device)

    def penalty(self) -> torch.Tensor:
        raise NotImplementedError

    def objective(self, X, y, beta: float) -> torch.Tensor:
        """``1/2 ||f(X) - y||^2 + (beta/L) * penalty()``: the training objective (a scalar tensor)."""
        beta = _check_beta(beta)
        X, y = self.as_tensor(X), self.as_tensor(y).reshape(-1)
        return 0.5 * torch.sum((self(X) - y) ** 2) + (beta / self.depth) * self.penalty()

    def predict(self, X) -> np.ndarray:
        """``f(X)`` as a float64 numpy array (no gradient)."""
        with torch.no_grad():
            return self(self.as_tensor(X)).double().cpu().numpy()


class ParallelAbsNet(AbsNet):
    """``f(x) = xi + sum_k alpha_k h_k(x)``, ``h_k`` a chain of one d-dimensional and L-2 scalar abs layers.

    ``penalty() = sum_k ||w_k||^L + sum_l |v_{k,l}|^L + |alpha_k|^L``; ``bias=False`` removes the
    first-layer biases ``b_k`` only (the scalar-layer biases are the fold offsets).
    """

    def __init__(self, d: int, depth: int, width: int, bias: bool = True, dtype=torch.float64,
                 seed: int | None = None, _allow_empty: bool = False):
        super().__init__()
        _check_shape(d, depth, width, _allow_empty)
        self.d, self.depth, self.width, self.bias, self.dtype = int(d), int(depth), int(width), bool(bias), dtype
        m, s = self.width, self.depth - 2
        self.W = self._param(m, self.d)
        self.b = self._param(m) if self.bias else None
        self.V = self._param(m, s)
        self.c = self._param(m, s)
        self.alpha = self._param(m)
        self.xi = self._param(())
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Random start: ``w ~ N(0, I/d)``, ``b ~ N(0, 1)``, ``v ~ 1 + N(0, 0.1)``, bias ``~ N(0, 0.1)``,
        ``alpha ~ N(0, 1/m)``."""
        g = torch.Generator().manual_seed(int(seed)) if seed is not None else None

        def normal(p, mean=0.0, std=1.0):
            with torch.no_grad():
                p.copy_(mean + std * torch.randn(p.shape, generator=g, dtype=torch.float64))

        normal(self.W, std=self.d ** -0.5)
        if self.b is not None:
            normal(self.b)
        normal(self.V, 1.0, 0.1)
        normal(self.c, std=0.1)
        normal(self.alpha, std=max(self.width, 1) ** -0.5)
        with torch.no_grad():
            self.xi.zero_()

    def units(self, X: torch.Tensor) -> torch.Tensor:
        """``h_k(x_n)`` as an (n, width) tensor."""
        U = X @ self.W.T
        if self.b is not None:
            U = U + self.b
        U = U.abs()
        for level in range(self.depth - 2):
            U = (self.V[:, level] * U + self.c[:, level]).abs()
        return U

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.xi + self.units(X) @ self.alpha

    def penalty(self) -> torch.Tensor:
        L = self.depth
        return (torch.sum(torch.sum(self.W ** 2, dim=1) ** (L / 2)) + torch.sum(self.V.abs() ** L)
                + torch.sum(self.alpha.abs() ** L))

    @classmethod
    def from_features(cls, W, b, C, coef, intercept: float, depth: int, bias: bool = True,
                      dtype=torch.float64) -> ParallelAbsNet:
        """The network of a Lasso solution (docs/MATH.md section 6): one unit per non-zero ``coef``.

        With ``gamma = |z|^(1/L)``: first layer ``gamma w``, bias ``gamma b``; scalar layers ``gamma``
        with biases ``-c_l gamma^(l+1)``; outer weight ``sign(z) gamma``; output bias ``xi``. Then
        ``f(X) = A z + xi`` and ``objective(X, y, beta)`` equals the Lasso objective.
        """
        features = FoldFeatures.of(W, b, C).with_offsets(depth - 2)
        coef = np.asarray(coef, dtype=float).reshape(-1)
        if len(coef) != features.n:
            raise ValueError(f"from_features: W, b, C and coef must have one row per feature, got "
                             f"{features.n} features and {len(coef)} coefficients")
        W, b, C = features.W, features.b, features.C
        if np.any(C < 0):
            raise ValueError("from_features: fold offsets must be >= 0")
        if not bias and np.any(b != 0):
            raise ValueError("from_features: bias=False but some features have a non-zero bias b")
        keep = coef != 0
        W, b, C, coef = W[keep], b[keep], C[keep], coef[keep]
        norms = np.linalg.norm(W, axis=1)
        if not np.allclose(norms, 1.0, rtol=1e-8, atol=0):
            raise ValueError(f"from_features: feature normals must have ||w|| = 1, got norms in "
                             f"[{norms.min():.6g}, {norms.max():.6g}]")
        m = len(coef)
        net = cls(W.shape[1], depth, m, bias=bias, dtype=dtype, _allow_empty=True)
        gamma = np.abs(coef) ** (1.0 / depth)
        levels = np.arange(2, depth)                                 # l + 1 for l = 1..L-2
        with torch.no_grad():
            net.W.copy_(torch.as_tensor(gamma[:, None] * W))
            if bias:
                net.b.copy_(torch.as_tensor(gamma * b))
            net.V.copy_(torch.as_tensor(np.repeat(gamma[:, None], depth - 2, axis=1)))
            net.c.copy_(torch.as_tensor(-C * gamma[:, None] ** levels))
            net.alpha.copy_(torch.as_tensor(np.sign(coef) * gamma))
            net.xi.fill_(float(intercept))
        logger.debug("reconstructed a depth-%d parallel network with %d units", depth, m)
        return net

    def unit_features(self):
        """Each unit as ``alpha_k h_k = coef_k * phi_k + const``:
        ``(W (m, d) unit rows, b, C (m, L-2) >= 0, coef, intercept)``.

        ``c_l = -b_l / (v_l s_l)`` with ``s_1 = ||w||``, ``s_{l+1} = |v_l| s_l``, ``coef = alpha s_{L-1}``. An
        offset ``c <= 0`` is no fold (``| u - c | = u - c`` for ``u >= 0``): it is carried into the next
        level and finally into ``intercept``, as are units of zero scale (constants, ``coef = 0``),
        so ``f(X) = intercept + feature_values(X, W, b, C) @ coef`` with the feature convention.
        """
        with torch.no_grad():
            W = self.W.double().cpu().numpy()
            b = self.b.double().cpu().numpy() if self.b is not None else np.zeros(self.width)
            V, c = self.V.double().cpu().numpy(), self.c.double().cpu().numpy()
            alpha = self.alpha.double().cpu().numpy()
            const = self.units(torch.zeros(1, self.d, dtype=self.dtype, device=self.device))[0].double().cpu().numpy()
        s1 = np.linalg.norm(W, axis=1)
        s, shift = s1.copy(), np.zeros(self.width)
        C = np.zeros((self.width, self.depth - 2))
        for level in range(self.depth - 2):
            scale = V[:, level] * s
            ok = scale != 0
            raw = np.zeros(self.width)
            raw[ok] = -c[ok, level] / scale[ok] + shift[ok]
            C[:, level] = np.maximum(raw, 0.0)
            shift = np.minimum(raw, 0.0)
            s = np.abs(V[:, level]) * s
        live = s > 0
        coef = np.where(live, alpha * s, 0.0)
        intercept = (float(self.xi.item()) + float(np.sum(alpha[~live] * const[~live]))
                     - float(np.sum(coef * shift)))
        C[~live] = 0.0
        s1 = np.where(s1 > 0, s1, 1.0)
        return W / s1[:, None], b / s1, C, coef, intercept

    def first_layer(self):
        """First-layer hyperplanes ``(W unit rows, b)`` and each neuron's weight ``|coef_k|`` in f."""
        W, b, _, coef, _ = self.unit_features()
        return W, b, np.abs(coef)


class FCAbsNet(AbsNet):
    """Ordinary fully connected abs network: ``f(x) = xi + a . |W_{L-1} ... |W_1 x + b_1| ... + b_{L-1}|``.

    ``penalty() = sum_l ||W_l||_F^L`` over the L weight matrices (``a`` included), biases free;
    ``bias=False`` removes the first-layer bias only. For L = 2 it equals ``ParallelAbsNet``.
    """

    def __init__(self, d: int, depth: int, width: int, bias: bool = True, dtype=torch.float64,
                 seed: int | None = None):
        super().__init__()
        _check_shape(d, depth, width)
        self.d, self.depth, self.width, self.bias, self.dtype = int(d), int(depth), int(width), bool(bias), dtype
        m = self.width
        self.W = nn.ParameterList([self._param(m, self.d)] + [self._param(m, m) for _ in range(self.depth - 2)])
        self.biases = nn.ParameterList(([self._param(m)] if self.bias else [])
                                       + [self._param(m) for _ in range(self.depth - 2)])
        self.alpha = self._param(m)
        self.xi = self._param(())
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Random start: weights ``N(0, 1/fan_in)``, biases ``N(0, 1)`` first and ``N(0, 0.1)`` after, ``xi = 0``."""
        g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        with torch.no_grad():
            for p in list(self.W) + [self.alpha]:
                fan_in = p.shape[-1] if p.dim() == 2 else self.width
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * fan_in ** -0.5)
            for i, p in enumerate(self.biases):
                std = 1.0 if (i == 0 and self.bias) else 0.1
                p.copy_(std * torch.randn(p.shape, generator=g, dtype=torch.float64))
            self.xi.zero_()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        H = X
        biases = list(self.biases) if self.bias else [None] + list(self.biases)
        for Wl, bl in zip(self.W, biases):
            H = H @ Wl.T
            if bl is not None:
                H = H + bl
            H = H.abs()
        return self.xi + H @ self.alpha

    def first_layer(self):
        """First-layer hyperplanes ``(W unit rows, b)`` and each neuron's weight ``||W_1[k]|| * ||next[:, k]||``."""
        with torch.no_grad():
            W = self.W[0].double().cpu().numpy()
            b = self.biases[0].double().cpu().numpy() if self.bias else np.zeros(self.width)
            nxt = (self.W[1] if self.depth > 2 else self.alpha[None, :]).double().cpu().numpy()
        s = np.linalg.norm(W, axis=1)
        unit = np.where(s > 0, s, 1.0)
        return W / unit[:, None], b / unit, s * np.linalg.norm(nxt, axis=0)

    def penalty(self) -> torch.Tensor:
        L = self.depth
        return sum(torch.sum(Wl ** 2) ** (L / 2) for Wl in self.W) + torch.sum(self.alpha ** 2) ** (L / 2)
