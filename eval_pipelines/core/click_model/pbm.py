"""The position-based click model, P(click) = theta[position] * gamma[query, document], fitted by EM
and then Fisher scoring.

Plain numpy over aggregated cells (one cell = a pair at a position with impression and click
counts), so one iteration costs a few passes over the cells whatever the number of searches. The
scale of theta is not identified (theta * s and gamma / s fit alike), so convergence is judged on
theta relative to position 1, which is what the model reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

_TINY = 1e-12
_BOUND = 1e-9
_DAMPING = 1e-6
_HALVINGS = 30
_MAX_LOGIT_STEP = 2.0
_FLAT = 1e-9
TOLERANCE = 1e-4
EM_WARM_UP = 20


@dataclass(frozen=True)
class PbmFit:
    """theta per position (0-based index), gamma per pair, and how the EM ended."""

    theta: np.ndarray
    gamma: np.ndarray
    iterations: int  # Fisher-scoring steps after the EM warm-up
    converged: bool
    log_likelihood: float

    @property
    def relative(self) -> np.ndarray:
        return self.theta / self.theta[0]


def log_likelihood(
    theta: np.ndarray,
    gamma: np.ndarray,
    pair: np.ndarray,
    position: np.ndarray,
    impressions: np.ndarray,
    clicks: np.ndarray,
) -> float:
    p = np.clip(theta[position] * gamma[pair], _TINY, 1 - _TINY)
    return float(np.sum(clicks * np.log(p) + (impressions - clicks) * np.log1p(-p)))


def initial_gamma(
    pair: np.ndarray, impressions: np.ndarray, clicks: np.ndarray, n_pairs: int
) -> np.ndarray:
    """Each pair's click rate, pulled off 0 and 1 so EM can move it either way."""
    shown = np.bincount(pair, impressions, minlength=n_pairs)
    clicked = np.bincount(pair, clicks, minlength=n_pairs)
    return np.clip((clicked + 0.5) / (shown + 1.0), 0.01, 0.99)


@dataclass(frozen=True)
class _Data:
    pair: np.ndarray
    position: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    unclicked: np.ndarray
    shown_at: np.ndarray
    shown_pair: np.ndarray

    def step(self, theta: np.ndarray, gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One EM step: expected examinations per position and relevances per pair."""
        t = theta[self.position]
        g = gamma[self.pair]
        rest = self.unclicked / np.maximum(1.0 - t * g, _TINY)
        examined = self.clicks + rest * t * (1.0 - g)
        relevant = self.clicks + rest * (1.0 - t) * g
        new_theta = np.divide(
            np.bincount(self.position, examined, minlength=theta.size),
            self.shown_at,
            out=theta.copy(),
            where=self.shown_at > 0,
        )
        new_gamma = np.divide(
            np.bincount(self.pair, relevant, minlength=gamma.size),
            self.shown_pair,
            out=gamma.copy(),
            where=self.shown_pair > 0,
        )
        return new_theta, new_gamma

    def log_likelihood(self, theta: np.ndarray, gamma: np.ndarray) -> float:
        return log_likelihood(theta, gamma, self.pair, self.position, self.impressions, self.clicks)


def _logit(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, _BOUND, 1 - _BOUND)
    return np.log(x) - np.log1p(-x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _scoring_step(
    data: _Data, u: np.ndarray, w: np.ndarray, damping: float
) -> tuple[np.ndarray, np.ndarray]:
    """One Fisher-scoring direction in theta = sigmoid(u), gamma = sigmoid(w), solved through the
    Schur complement of the pairs' diagonal block: a dense solve over positions only."""
    theta, gamma = _sigmoid(u), _sigmoid(w)
    t, g = theta[data.position], gamma[data.pair]
    p = np.clip(t * g, _TINY, 1 - _BOUND)
    score = (data.clicks - data.impressions * p) / (1.0 - p)
    information = data.impressions * p / (1.0 - p)
    dt, dg = (1.0 - t), (1.0 - g)
    grad_u = np.bincount(data.position, dt * score, minlength=u.size)
    grad_w = np.bincount(data.pair, dg * score, minlength=w.size)
    a = np.bincount(data.position, dt * dt * information, minlength=u.size) + damping
    c = np.bincount(data.pair, dg * dg * information, minlength=w.size) + damping
    b = csr_matrix((dt * dg * information, (data.position, data.pair)), shape=(u.size, w.size))
    b_scaled = b.multiply(1.0 / c[None, :]).tocsr()
    schur = np.diag(a) - (b_scaled @ b.T).toarray()
    rhs = grad_u - b_scaled @ grad_w
    delta_u = np.linalg.lstsq(schur, rhs, rcond=None)[0]
    delta_w = (grad_w - b.T @ delta_u) / c
    return delta_u, delta_w


def _scoring(
    data: _Data, theta: np.ndarray, gamma: np.ndarray, tolerance: float, max_iterations: int
) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Fisher scoring, each logit moved by at most _MAX_LOGIT_STEP and the step halved until the
    likelihood does not decrease, until a step moves no relative propensity by more than tolerance
    and gains no likelihood. (Where the maximum lies on the bound theta = 1 the relative curve
    wobbles by about 1e-5 from step to step without changing the likelihood: a tolerance below
    that would never be met.)"""
    u, w = _logit(theta), _logit(gamma)
    current = data.log_likelihood(theta, gamma)
    for iteration in range(1, max_iterations + 1):
        delta_u, delta_w = _scoring_step(data, u, w, _DAMPING)
        # A longer step would saturate a sigmoid, whose gradient then vanishes for good.
        delta_u = np.clip(delta_u, -_MAX_LOGIT_STEP, _MAX_LOGIT_STEP)
        delta_w = np.clip(delta_w, -_MAX_LOGIT_STEP, _MAX_LOGIT_STEP)
        step = 1.0
        for _ in range(_HALVINGS):
            new_u, new_w = u + step * delta_u, w + step * delta_w
            value = data.log_likelihood(_sigmoid(new_u), _sigmoid(new_w))
            if value >= current - 1e-9 * abs(current):
                break
            step /= 2
        else:
            return _sigmoid(u), _sigmoid(w), iteration, False
        before, after = _sigmoid(u), _sigmoid(new_u)
        change = float(np.max(np.abs(after / after[0] - before / before[0])))
        gain = value - current
        u, w, current = new_u, new_w, value
        if change < tolerance and gain <= _FLAT * abs(current):
            return _sigmoid(u), _sigmoid(w), iteration, True
    return _sigmoid(u), _sigmoid(w), max_iterations, False


def fit_pbm(
    pair: np.ndarray,
    position: np.ndarray,
    impressions: np.ndarray,
    clicks: np.ndarray,
    n_pairs: int,
    n_positions: int,
    *,
    theta: np.ndarray | None = None,
    gamma: np.ndarray | None = None,
    tolerance: float = TOLERANCE,
    max_iterations: int = 100,
    em_iterations: int = EM_WARM_UP,
) -> PbmFit:
    """EM from theta/gamma when given (a warm start, then no EM is needed), else from flat theta
    and click-rate gamma, for em_iterations; then Fisher scoring to the maximum.

    Plain EM crawls along the likelihood's flat directions (on the demo logs it had not converged
    after 2,000 iterations); scoring converges in a few steps. Converged when no relative propensity
    moves by more than tolerance in a step and the likelihood is flat. A position or pair with no impressions (say, in a
    bootstrap draw) keeps its starting value.
    """
    cold = theta is None
    theta = np.full(n_positions, 0.5) if theta is None else theta.astype(np.float64).copy()
    if gamma is None:
        gamma = initial_gamma(pair, impressions, clicks, n_pairs)
    gamma = gamma.astype(np.float64).copy()
    data = _Data(
        pair,
        position,
        impressions,
        clicks,
        impressions - clicks,
        np.bincount(position, impressions, minlength=n_positions),
        np.bincount(pair, impressions, minlength=n_pairs),
    )
    for _ in range(em_iterations if cold else 0):
        theta, gamma = data.step(theta, gamma)
    theta, gamma, iterations, converged = _scoring(data, theta, gamma, tolerance, max_iterations)
    return PbmFit(
        theta=theta,
        gamma=gamma,
        iterations=iterations,
        converged=converged,
        log_likelihood=data.log_likelihood(theta, gamma),
    )
