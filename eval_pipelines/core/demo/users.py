"""Simulated shoppers: a position-biased click model over served pages, driven by true grades.

Results are rendered a page of 12 at a time (3 rows of 4): the first page always, each further page
only when the user loads more (independent of relevance). Users scan the rendered grid row by row, so
examination falls with the row; whether an examined product is clicked, added to the cart and bought
depends only on its true grade for the user's intent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INTERACTION_TYPES: tuple[str, ...] = ("click", "add_to_cart", "purchase")
NOT_SERVED = -1


@dataclass(frozen=True)
class ClickModel:
    """Probabilities indexed by grade 0..3; examination by 0-based position on the page."""

    row_width: int = 4
    page_size: int = 12
    load_more: float = 0.5
    top_examination: float = 0.95
    row_decay: float = 0.8
    click: tuple[float, float, float, float] = (0.01, 0.025, 0.10, 0.30)
    add_to_cart: tuple[float, float, float, float] = (0.01, 0.03, 0.15, 0.50)
    purchase: tuple[float, float, float, float] = (0.05, 0.20, 0.30, 0.70)

    def examination_if_rendered(self, depth: int) -> np.ndarray:
        """P(examined | rendered) per position: the grid row's decay."""
        return self.top_examination * self.row_decay ** (np.arange(depth) // self.row_width)

    def rendered(self, depth: int) -> np.ndarray:
        """P(rendered) per position: page n (0-based) needs n loads of more results."""
        return self.load_more ** (np.arange(depth) // self.page_size)

    def examination(self, depth: int) -> np.ndarray:
        """The marginal P(examined) per position, what a position-based click model estimates."""
        return self.rendered(depth) * self.examination_if_rendered(depth)

    def rendered_pages(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Pages each of n users renders: 1, plus one per successive load of more (geometric)."""
        if self.load_more <= 0:
            return np.ones(n, dtype=np.int64)
        if self.load_more >= 1:
            return np.full(n, np.iinfo(np.int32).max, dtype=np.int64)
        extra = np.floor(np.log1p(-rng.random(n)) / np.log(self.load_more))
        return 1 + extra.astype(np.int64)


@dataclass(frozen=True)
class SimulatedInteractions:
    """One row per interaction, ordered by (execution, position, type); delays in seconds."""

    execution: np.ndarray
    position: np.ndarray
    type_code: np.ndarray
    delay_s: np.ndarray
    rendered_pages: np.ndarray

    def __len__(self) -> int:
        return len(self.execution)

    def counts_by_type(self) -> dict[str, int]:
        counts = np.bincount(self.type_code, minlength=len(INTERACTION_TYPES))
        return {name: int(counts[i]) for i, name in enumerate(INTERACTION_TYPES)}


def simulate_interactions(
    rng: np.random.Generator, page_grades: np.ndarray, model: ClickModel | None = None
) -> SimulatedInteractions:
    """Draw interactions for pages of true grades (executions x positions; NOT_SERVED for empty slots)."""
    model = model or ClickModel()
    if page_grades.ndim != 2:
        raise ValueError(f"page_grades: expected a 2-d array, got shape {page_grades.shape}")
    served = page_grades != NOT_SERVED
    if np.any(page_grades[served] < 0) or np.any(page_grades[served] > 3):
        raise ValueError("page_grades: grades must be 0..3 (or NOT_SERVED)")
    grade = np.where(served, page_grades, 0)
    shape = page_grades.shape
    pages = model.rendered_pages(rng, shape[0])
    rendered = np.arange(shape[1]) < (pages * model.page_size)[:, None]
    examined = rng.random(shape) < model.examination_if_rendered(shape[1])
    clicked = served & rendered & examined & (rng.random(shape) < np.asarray(model.click)[grade])
    carted = clicked & (rng.random(shape) < np.asarray(model.add_to_cart)[grade])
    bought = carted & (rng.random(shape) < np.asarray(model.purchase)[grade])
    click_delay = 2.0 + 1.5 * np.arange(shape[1]) + rng.exponential(6.0, size=shape)
    cart_delay = click_delay + 10.0 + rng.exponential(40.0, size=shape)
    purchase_delay = cart_delay + 30.0 + rng.exponential(120.0, size=shape)

    stacked = np.stack([clicked, carted, bought], axis=-1)
    delays = np.stack([click_delay, cart_delay, purchase_delay], axis=-1)
    execution, position, type_code = np.nonzero(stacked)
    return SimulatedInteractions(
        execution=execution,
        position=position,
        type_code=type_code,
        delay_s=np.round(delays[execution, position, type_code], 3),
        rendered_pages=pages,
    )


def draw_users(rng: np.random.Generator, n_executions: int, n_users: int) -> np.ndarray:
    """A user index per execution: a few heavy shoppers, many occasional ones."""
    activity = 1.0 / np.arange(1, n_users + 1, dtype=float) ** 0.6
    return rng.permutation(n_users)[
        rng.choice(n_users, size=n_executions, p=activity / activity.sum())
    ]
