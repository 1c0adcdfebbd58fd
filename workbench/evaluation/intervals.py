"""95% confidence intervals for evaluation figures.

- A rate of 0/1 outcomes (exact match, contains, regex, multiple-choice accuracy): the Wilson score
  interval, which stays inside [0, 1] and is sensible at 0/24 and 24/24, where the normal
  approximation collapses to a point.
- A mean of continuous scores (ROUGE-L, BLEU, chrF, length) and a pooled loss (total loss over
  total tokens): the percentile bootstrap over rows.
- A difference between two models on the same rows: the paired bootstrap (rows resampled once,
  both models' scores kept together), so the rows' own difficulty cancels out.

Bootstraps draw BOOTSTRAP_RESAMPLES resamples from a fixed seed, so a report is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

Z_95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% interval.

    Attributes:
        value: the estimate (a rate, a mean, a pooled loss or a difference).
        low / high: the interval's ends.
        n: rows it rests on.
        method: "wilson", "bootstrap" or "paired-bootstrap".
    """

    value: float
    low: float
    high: float
    n: int
    method: str

    def to_dict(self) -> dict:
        return asdict(self)


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for `successes` out of `n` (n = 0 gives (0, 1))."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0/n and n/n the closed form gives the end exactly, up to rounding: say so exactly.
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def rate_estimate(outcomes: Sequence[float]) -> Estimate:
    """The share of 1s among 0/1 outcomes, with its Wilson interval."""
    n = len(outcomes)
    successes = int(round(sum(outcomes)))
    low, high = wilson_interval(successes, n)
    return Estimate(successes / n if n else 0.0, low, high, n, "wilson")


def _resample_indices(n: int, resamples: int, seed: int):
    import numpy as np

    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentiles(samples) -> tuple[float, float]:
    import numpy as np

    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def mean_estimate(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Estimate:
    """The mean with a percentile-bootstrap interval."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    n = len(data)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, "bootstrap")
    mean = float(data.mean())
    if n == 1:
        return Estimate(mean, mean, mean, 1, "bootstrap")
    low, high = _percentiles(data[_resample_indices(n, resamples, seed)].mean(axis=1))
    return Estimate(mean, low, high, n, "bootstrap")


def pooled_estimate(
    totals: Sequence[float], counts: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Estimate:
    """sum(totals) / sum(counts) (a token-weighted loss) with a bootstrap interval over rows."""
    import numpy as np

    top, bottom = np.asarray(totals, dtype=float), np.asarray(counts, dtype=float)
    n = len(top)
    if n == 0 or bottom.sum() <= 0:
        return Estimate(math.nan, math.nan, math.nan, n, "bootstrap")
    value = float(top.sum() / bottom.sum())
    if n == 1:
        return Estimate(value, value, value, 1, "bootstrap")
    picks = _resample_indices(n, resamples, seed)
    low, high = _percentiles(top[picks].sum(axis=1) / np.maximum(bottom[picks].sum(axis=1), 1e-12))
    return Estimate(value, low, high, n, "bootstrap")


def paired_difference(
    first: Sequence[float], second: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Optional[Estimate]:
    """mean(second) - mean(first) over paired rows, with a paired-bootstrap interval (None without rows)."""
    import numpy as np

    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(a) != len(b):
        raise ValueError("paired_difference needs the same rows for both models")
    n = len(a)
    if n == 0:
        return None
    differences = b - a
    value = float(differences.mean())
    if n == 1:
        return Estimate(value, value, value, 1, "paired-bootstrap")
    low, high = _percentiles(differences[_resample_indices(n, resamples, seed)].mean(axis=1))
    return Estimate(value, low, high, n, "paired-bootstrap")


def estimate_for(metric_is_binary: bool, values: Sequence[float]) -> Estimate:
    """Wilson for 0/1 metrics, bootstrap otherwise."""
    return rate_estimate(values) if metric_is_binary else mean_estimate(values)
