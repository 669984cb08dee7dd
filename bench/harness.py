"""A small harness: timing helpers, figures with optional targets, and a printed report."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    # A target is met when value <= at_most (latencies, ratios) or value >= at_least (rates).
    at_most: float | None = None
    at_least: float | None = None

    @property
    def met(self) -> bool | None:
        if self.at_most is not None:
            return self.value <= self.at_most
        if self.at_least is not None:
            return self.value >= self.at_least
        return None

    def line(self) -> str:
        target = ""
        if self.at_most is not None:
            target = f"target <= {self.at_most:g}"
        elif self.at_least is not None:
            target = f"target >= {self.at_least:g}"
        verdict = {True: "ok", False: "MISSED", None: ""}[self.met]
        return f"  {self.name:<48} {self.value:>14,.3f} {self.unit:<10} {target:<18} {verdict}"


def time_each(call: Callable[[], object], *, repeat: int, warmup: int = 20) -> list[float]:
    """Seconds taken by each of `repeat` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def latency_figures(prefix: str, samples: list[float]) -> list[Figure]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return [
        Figure(f"{prefix} p50", pct(0.50), "ms"),
        Figure(f"{prefix} p95", pct(0.95), "ms"),
        Figure(f"{prefix} p99", pct(0.99), "ms"),
        Figure(f"{prefix} mean", statistics.fmean(samples) * 1000, "ms"),
        Figure(f"{prefix} throughput", len(samples) / sum(samples), "req/s"),
    ]
