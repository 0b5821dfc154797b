"""Numbers from a load run: percentiles, ratios and the printed tables (pure, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (`q` in 0..100) of already sorted values: the smallest value
    with at least q% of the values at or below it. p100 is the maximum; empty input is NaN."""
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    """One fixed-duration, fixed-concurrency run of one request kind."""

    group: str
    name: str
    seconds: float
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""  # what the first failed request (warm-up included) got, for the report
    # CPU seconds used during the measured window, by process group ("client", "envoy", ...).
    cpu: dict[str, float] = field(default_factory=dict)
    machine_cpu: float = 0.0  # CPU seconds every process on the machine used in the window
    machine_capacity: float = 0.0  # cores x window seconds

    @property
    def count(self) -> int:
        return len(self.latencies_ns)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def latency_ms(self, q: float) -> float:
        return percentile(sorted(self.latencies_ns), q) / 1e6

    def cpu_ms_per_request(self, key: str) -> float:
        return 1000 * self.cpu.get(key, 0.0) / self.count if self.count else math.nan

    def cores(self, key: str) -> float:
        """How many cores a process group kept busy on average."""
        return self.cpu.get(key, 0.0) / self.seconds

    @property
    def other_cores(self) -> float:
        """Cores busy with work outside this benchmark (other sessions on a shared machine)."""
        return max(0.0, self.machine_cpu - sum(self.cpu.values())) / self.seconds

    @property
    def machine_busy(self) -> float:
        return self.machine_cpu / self.machine_capacity if self.machine_capacity else math.nan


def ratio(value: float, floor: float) -> float:
    return value / floor if floor else math.nan


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with right-aligned numbers (renders in the README, reads in a terminal)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(out) + " |"

    sep = "|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def load_table(results: Sequence[LoadResult], floors: dict[str, LoadResult]) -> str:
    """Throughput and latency per row, each beside the floor run of the same request kind."""
    rows = []
    for r in results:
        floor = floors.get(r.name)
        rows.append([
            f"{r.group}: {r.name}",
            _fmt(r.rate, 0),
            _fmt(r.latency_ms(50), 2),
            _fmt(r.latency_ms(99), 2),
            str(r.errors),
            _fmt(ratio(r.rate, floor.rate), 2) + "×" if floor else "-",
            _fmt(ratio(r.latency_ms(50), floor.latency_ms(50)), 1) + "×" if floor else "-",
        ])
    return render_table(["request", "req/s", "p50 ms", "p99 ms", "errors", "req/s vs floor", "p50 vs floor"], rows)


CPU_GROUPS = ("client", "envoy", "ratelimit", "services", "floor", "postgres", "nats")


def cpu_table(results: Sequence[LoadResult]) -> str:
    """Where the CPU went, per request, during each measured window, and what was saturated."""
    rows = []
    for r in results:
        server = sum(r.cpu.get(k, 0.0) for k in CPU_GROUPS if k != "client")
        busiest = max((k for k in CPU_GROUPS if k != "client"), key=r.cores)
        cells = [f"{r.group}: {r.name}"] + [_fmt(r.cpu_ms_per_request(k), 3) for k in CPU_GROUPS]
        cells += [
            _fmt(1000 * server / r.count if r.count else math.nan, 3),
            f"{busiest} {r.cores(busiest):.2f}",
            _fmt(r.cores("client"), 2),
            _fmt(r.other_cores, 2),
            _fmt(100 * r.machine_busy, 0) + "%",
        ]
        rows.append(cells)
    headers = [*["request"], *CPU_GROUPS, "server total", "busiest (cores)", "client (cores)", "other work (cores)",
               "machine busy"]
    return render_table(headers, rows)
