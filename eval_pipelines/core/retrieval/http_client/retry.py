"""When a call is sent again: transient failures, backoff with full jitter, Retry-After, and an engine that is down."""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eval_pipelines.core.retrieval.config import HttpConfig
from eval_pipelines.core.retrieval.execution import (
    ERROR_CONNECTION,
    ERROR_HTTP_4XX,
    ERROR_HTTP_5XX,
    ERROR_TIMEOUT,
)
from eval_pipelines.core.retrieval.http_client.secrets import body_excerpt, excerpt
from eval_pipelines.core.retrieval.http_client.transport import Answer, ConnectFailed
from eval_pipelines.core.retrieval.masking import SecretMask

TOO_MANY_REQUESTS = 429
UNREACHABLE_AFTER_CALLS = 3


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date); None if unusable.

    Fractional seconds are accepted, as some engines send them; a date in the past means 0.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass
class Failure:
    error_type: str
    message: str


@dataclass
class Attempts:
    """What the attempts of one call saw: the last answer, the failure, and the waits between.

    count: every request put on the wire (and every connection tried), so a request sent again
    on a new connection after a kept-alive one turned out closed counts twice; tries: rounds of
    the retry loop, which max_retries bounds. reached: some attempt got further than failing to
    connect; a timeout counts, since the engine may have been slow rather than unreachable.
    """

    count: int = 0
    tries: int = 0
    resent: int = 0
    answer: Answer | None = None
    failure: Failure | None = None
    waits_s: list[float] = field(default_factory=list)
    reached: bool = False

    @property
    def status(self) -> int:
        return self.answer.status if self.answer is not None else 0

    @property
    def body(self) -> bytes:
        return self.answer.body if self.answer is not None else b""

    def count_resend(self) -> None:
        self.count += 1
        self.resent += 1


Post = Callable[[Attempts], Awaitable[Answer]]


class RetryPolicy:
    """Retries of one retriever's calls. Once several calls in a row could not even connect,
    later calls make one attempt each, so a replay against a dead engine fails fast."""

    def __init__(self, http: HttpConfig, jitter_seed: int | None = None) -> None:
        self.http = http
        self._random = random.Random(jitter_seed)
        self.unreachable_calls = 0

    async def send(self, post: Post, mask: SecretMask) -> Attempts:
        engine_down = self.unreachable_calls >= UNREACHABLE_AFTER_CALLS
        seen = await self._attempt(post, mask, engine_down)
        if seen.reached:
            self.unreachable_calls = 0
        else:
            self.unreachable_calls += 1
            if seen.failure is not None and seen.tries <= self.http.max_retries:
                seen.failure.message += (
                    f"; not retried: the previous {UNREACHABLE_AFTER_CALLS}+ calls"
                    " could not connect either"
                )
        return seen

    def backoff_s(self, retry: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^(retry-1))]."""
        ceiling = min(self.http.backoff_max_s, self.http.backoff_base_s * 2 ** (retry - 1))
        return self._random.uniform(0.0, ceiling)

    def wait_before_retry_s(self, retry: int, previous: Answer | None) -> float:
        """The jittered backoff, added to what the engine's Retry-After asked for, at most
        backoff_max_s: waiting longer would let one answer header stall a whole replay."""
        backoff = self.backoff_s(retry)
        asked = parse_retry_after(previous.retry_after if previous is not None else None)
        if asked is None:
            return backoff
        return min(self.http.backoff_max_s, asked + backoff)

    async def _attempt(self, post: Post, mask: SecretMask, engine_down: bool) -> Attempts:
        """Send until an answer that is final or the retries run out; when the engine looks down,
        a call that cannot connect gives up at once."""
        seen = Attempts()
        for attempt in range(self.http.max_retries + 1):
            if attempt:
                wait_s = self.wait_before_retry_s(attempt, seen.answer)
                seen.waits_s.append(wait_s)
                await asyncio.sleep(wait_s)
            seen.tries += 1
            seen.count += 1
            seen.answer = None
            try:
                seen.answer = answer = await post(seen)
            except ConnectFailed as exc:
                seen.failure = Failure(ERROR_CONNECTION, exc.reason)
                if engine_down:
                    break
                continue
            except TimeoutError:
                seen.reached = True
                seen.failure = Failure(ERROR_TIMEOUT, f"timed out after {self.http.timeout_s:g} s")
                continue
            except (OSError, http.client.HTTPException) as exc:
                seen.reached = True
                seen.failure = Failure(
                    ERROR_CONNECTION, excerpt(f"{type(exc).__name__}: {exc}", mask)
                )
                continue
            seen.reached = True
            seen.failure = _transient_failure(answer, mask)
            if seen.failure is None:
                break
        return seen


def _transient_failure(answer: Answer, mask: SecretMask) -> Failure | None:
    """A 5xx or 429 answer, worth another attempt; None for an answer that is final."""
    if not (500 <= answer.status <= 599 or answer.status == TOO_MANY_REQUESTS):
        return None
    asked = (
        f" (Retry-After: {excerpt(answer.retry_after, mask, 40)})"
        if answer.retry_after is not None
        else ""
    )
    return Failure(
        ERROR_HTTP_5XX if answer.status >= 500 else ERROR_HTTP_4XX,
        f"HTTP {answer.status}: {body_excerpt(answer.body, mask)}{asked}",
    )
