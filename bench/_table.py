"""One row per measure: ours, the baseline named in the issue, their ratio, and the target.

Every benchmark module ``bench/bench_<area>.py`` exposes ``run(quick: bool) -> list[Row]``;
``python -m bench`` collects the rows of all of them (measured in the same run) and
prints one table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    """One measure.

    Attributes
    ----------
    area
        Which benchmark produced it (``engine``, ``storage``, ...).
    measure
        What was measured, with its unit, e.g. ``"batched JSON samples/s"``.
    ours
        Our number.
    baseline
        The baseline's number from the same run, or ``None`` where the issue names none.
    baseline_name
        What the baseline is, e.g. ``"raw websockets + json.loads"``.
    target
        The issue's target as text, e.g. ``">= 0.6x"`` or ``"<= 100 ms"``.
    met
        Whether the target was met (``None`` when there is no target).
    higher_is_better
        Direction of the measure, used to orient the ratio column.
    """

    area: str
    measure: str
    ours: float
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        """ours / baseline (so > 1 is faster for throughput, slower for times)."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.ours / self.baseline


def best_ms(fn: Callable[[], object], repeats: int = 1) -> float:
    """The best wall time of ``repeats`` calls of ``fn``, in ms (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:.2f} M"
    if ax >= 1e4:
        return f"{x / 1e3:.1f} k"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (pasteable into the README)."""
    header = "| area | measure | ours | baseline | baseline is | ratio | target | met |"
    lines = [header, "|---|---|---:|---:|---|---:|---|---|"]
    for r in rows:
        ratio = r.ratio
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        lines.append(
            f"| {r.area} | {r.measure} | {_fmt(r.ours)} | {_fmt(r.baseline)} | "
            f"{r.baseline_name or '-'} | {'-' if ratio is None else f'{ratio:.3g}x'} | "
            f"{r.target or '-'} | {met} |"
        )
    return "\n".join(lines)
