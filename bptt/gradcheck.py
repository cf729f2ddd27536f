"""Numerical gradient checking with centred differences (Chapter 5, "Gradient checking").

The relative error used throughout the book compares an analytic gradient ``a`` with a numerical
one ``n`` over a whole parameter array::

    max |a - n| / max(1e-8, max(|a| + |n|))

Normalising by the array's largest magnitude, not entry by entry, avoids the classic false alarm of
an entry whose true gradient is (nearly) zero, where any rounding noise looks like a 100 % error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _checks
from .cells import Params
from .params import as_generator

DEFAULT_TOLERANCE = 1e-7
"""Relative error above which :func:`gradcheck` reports a failure (float64, centred differences)."""


def relative_error(analytic: Any, numerical: Any) -> float:
    """``max|a - n| / max(1e-8, max(|a| + |n|))`` between two arrays of one shape (Chapter 5)."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"analytic and numerical must have one shape, got {a.shape} and {n.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / max(1e-8, float(np.max(np.abs(a) + np.abs(n)))))


@dataclass
class ParamCheck:
    """The check of one parameter array: how it was probed and the error found."""

    name: str
    shape: tuple[int, ...]
    checked: int
    mode: str
    max_abs_diff: float
    rel_error: float
    analytic: np.ndarray = field(repr=False)
    numerical: np.ndarray = field(repr=False)


@dataclass
class GradcheckReport:
    """Per-parameter results of :func:`gradcheck`; ``passed`` when every error is below ``tol``.

    Explained in Chapter 5.
    """

    checks: dict[str, ParamCheck]
    tol: float
    eps: float

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over all parameters."""
        return max((c.rel_error for c in self.checks.values()), default=0.0)

    @property
    def passed(self) -> bool:
        """True when every parameter's relative error is at most ``tol``."""
        return self.max_rel_error <= self.tol

    def rows(self) -> list[dict[str, Any]]:
        """One dict per parameter, convenient for a table (``pandas.DataFrame(report.rows())``)."""
        return [
            {
                "parameter": c.name,
                "shape": c.shape,
                "checked": c.checked,
                "mode": c.mode,
                "max |a - n|": c.max_abs_diff,
                "relative error": c.rel_error,
                "ok": c.rel_error <= self.tol,
            }
            for c in self.checks.values()
        ]

    def __str__(self) -> str:
        head = f"{'parameter':<10} {'shape':<12} {'checked':>8} {'mode':<10} {'rel. error':>10}  ok"
        lines = [head, "-" * len(head)]
        for row in self.rows():
            lines.append(
                f"{row['parameter']:<10} {row['shape']!s:<12} {row['checked']:>8} "
                f"{row['mode']:<10} {row['relative error']:>10.2e}  {'yes' if row['ok'] else 'NO'}"
            )
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"{verdict}: max relative error {self.max_rel_error:.2e} (tolerance {self.tol:g})"
        )
        return "\n".join(lines)


def _loss_of(f: Callable[[Params], Any], params: Params) -> float:
    out = f(params)
    value = out[0] if isinstance(out, tuple) else out
    return float(value)


def gradcheck(
    f: Callable[[Params], Any],
    params: Mapping[str, np.ndarray],
    *,
    grads: Mapping[str, np.ndarray] | None = None,
    eps: float = 1e-5,
    tol: float = DEFAULT_TOLERANCE,
    max_entries: int | None = None,
    directions: int = 0,
    rng: np.random.Generator | int = 0,
) -> GradcheckReport:
    """Compare analytic gradients with centred finite differences, parameter by parameter.

    Parameters
    ----------
    f : callable
        ``f(params)`` returns the loss, or a tuple whose first two items are the loss and the
        analytic gradients (as :func:`bptt.loss_and_grads` does).
    params : dict
        The point at which to check; its arrays are perturbed in place and restored.
    grads : dict, optional
        Analytic gradients; taken from ``f(params)[1]`` when omitted.
    eps : float
        Step of the centred difference ``(f(p + eps) - f(p - eps)) / (2 eps)``; its error is
        O(eps**2), its rounding noise O(machine epsilon / eps).
    tol : float
        Largest acceptable relative error (see :func:`relative_error`).
    max_entries : int, optional
        Check at most this many randomly chosen entries of each parameter (all when None).
    directions : int
        If > 0, instead check this many random unit directions per parameter: the directional
        derivative ``(f(p + eps v) - f(p - eps v)) / (2 eps)`` against ``<grad, v>``. Two function
        evaluations per direction, whatever the parameter's size: the check for large models.
    rng : numpy.random.Generator or int
        Chooses the entries or directions.

    Returns
    -------
    GradcheckReport
        Per-parameter relative errors; ``report.passed`` and ``str(report)`` (a table).

    Explained in Chapter 5.
    """
    if not callable(f):
        raise TypeError(f"f must be callable as f(params), got {f!r}")
    if not isinstance(params, Mapping) or not params:
        raise TypeError(f"params must be a non-empty mapping of arrays, got {params!r}")
    eps = _checks.positive_float("eps", eps)
    tol = _checks.positive_float("tol", tol)
    directions = _checks.positive_int("directions", directions, minimum=0)
    if max_entries is not None:
        max_entries = _checks.positive_int("max_entries", max_entries)
    gen = as_generator(rng)
    for name, value in params.items():
        array = _checks.float_array(f"params[{name!r}]", value)
        if array.dtype != np.float64:
            warnings.warn(
                f"params[{name!r}] is {array.dtype}: finite differences in low precision are "
                "dominated by rounding error (Chapter 5); check in float64",
                stacklevel=2,
            )
    if grads is None:
        out = f(params)  # type: ignore[arg-type]
        if not (isinstance(out, tuple) and len(out) >= 2 and isinstance(out[1], Mapping)):
            raise ValueError("grads not given and f(params) did not return (loss, grads, ...)")
        grads = out[1]
    missing = [k for k in params if k not in grads]
    if missing:
        raise ValueError(f"grads is missing the parameter(s) {missing}")

    checks: dict[str, ParamCheck] = {}
    for name, p in params.items():
        g = np.asarray(grads[name], dtype=np.float64)
        if g.shape != p.shape:
            raise ValueError(f"grads[{name!r}] has shape {g.shape}, params has {p.shape}")
        if directions:
            analytic, numerical = _directional(f, params, name, g, eps, directions, gen)
            mode, checked = "directions", directions
        else:
            flat_idx = np.arange(p.size)
            if max_entries is not None and max_entries < p.size:
                flat_idx = np.sort(gen.choice(p.size, size=max_entries, replace=False))
            analytic = g.reshape(-1)[flat_idx]
            numerical = _entrywise(f, params, name, flat_idx, eps)
            mode = "all" if flat_idx.size == p.size else "sampled"
            checked = int(flat_idx.size)
        checks[name] = ParamCheck(
            name=name,
            shape=tuple(p.shape),
            checked=checked,
            mode=mode,
            max_abs_diff=float(np.max(np.abs(analytic - numerical), initial=0.0)),
            rel_error=relative_error(analytic, numerical),
            analytic=analytic,
            numerical=numerical,
        )
    return GradcheckReport(checks=checks, tol=tol, eps=eps)


def _entrywise(
    f: Callable[[Params], Any],
    params: Mapping[str, np.ndarray],
    name: str,
    idx: np.ndarray,
    eps: float,
) -> np.ndarray:
    p = params[name]
    numerical = np.empty(idx.size)
    for j, i in enumerate(idx):
        # Index the array itself (not a reshaped copy), so that a non-contiguous parameter is
        # really perturbed.
        where = np.unravel_index(int(i), p.shape)
        original = p[where]
        p[where] = original + eps
        plus = _loss_of(f, params)  # type: ignore[arg-type]
        p[where] = original - eps
        minus = _loss_of(f, params)  # type: ignore[arg-type]
        p[where] = original
        numerical[j] = (plus - minus) / (2 * eps)
    return numerical


def _directional(
    f: Callable[[Params], Any],
    params: Mapping[str, np.ndarray],
    name: str,
    g: np.ndarray,
    eps: float,
    count: int,
    gen: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    p = params[name]
    original = p.copy()
    analytic, numerical = np.empty(count), np.empty(count)
    for j in range(count):
        v = gen.standard_normal(p.shape)
        v /= np.linalg.norm(v)
        p[...] = original + eps * v
        plus = _loss_of(f, params)  # type: ignore[arg-type]
        p[...] = original - eps * v
        minus = _loss_of(f, params)  # type: ignore[arg-type]
        p[...] = original
        numerical[j] = (plus - minus) / (2 * eps)
        analytic[j] = float(np.sum(g * v))
    return analytic, numerical
