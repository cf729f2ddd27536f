"""Numerical gradient checking with finite differences (Chapter 5, "Gradient checking").

The relative error used throughout the book compares an analytic gradient ``a`` with a numerical
one ``n`` over a whole parameter array::

    err(a, n) = max |a - n| / max(1e-8, max(|a| + |n|))

Normalising by the array's largest magnitude, not entry by entry, avoids the classic false alarm of
an entry whose true gradient is (nearly) zero, where any rounding noise looks like a 100 % error.

A finite difference is itself only an estimate, with a truncation error (from the step) and a
rounding error (from the loss's own rounding noise, divided by the step). :func:`gradcheck`
estimates both for every entry it checks and passes a parameter when::

    err(a, n) <= tol + fd_error

where ``fd_error`` is the estimated error of the finite differences in the same relative units.
So a correct gradient that is small beside the loss (whose finite difference is mostly rounding)
is not reported as wrong, and the report says how finely each parameter was actually checked.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.result import BPTTResult
from bptt.cells import Params
from bptt.model import Model
from bptt.params import as_generator

DEFAULT_TOLERANCE = 1e-7
"""Relative error above which :func:`gradcheck` reports a failure (float64)."""

DEFAULT_EPS = 1e-3
"""The first step of :func:`gradcheck`'s Richardson differences (the next ones are 100x smaller)."""

SMALL_STEP_RATIO = 1e-2
"""Each step of the default method is this fraction of the one before: eps, eps/100, ..."""

STEPS = 3
"""The default method tries at most this many steps: ``eps``, ``eps / 100``, ``eps / 10**4``."""

NOISE_SIGMAS = 6.0
"""Rounding bounds are this many standard deviations of the measured rounding noise."""

COARSE = 1e-3
"""A parameter whose ``fd_error`` exceeds this is flagged: a bug that small would pass."""

METHODS = ("richardson", "centred")

NOISE_GAIN = {"centred": math.sqrt(2) / 2, "richardson": math.sqrt(130) / 6}
"""Standard deviation of each formula's rounding error in units of ``sigma / h``, for loss values
with independent rounding errors of standard deviation ``sigma``: ``(f(+h) - f(-h)) / (2h)`` gives
``sqrt(2) / 2``, ``(8 (f(+h/2) - f(-h/2)) - (f(+h) - f(-h))) / (6h)`` gives ``sqrt(130) / 6``."""

NOISE_ORDER, NOISE_POINTS = 6, 10
"""The noise of the loss is measured from differences of this order, over this many points."""


def relative_error(analytic: Any, numerical: Any) -> float:
    """``max|a - n| / max(1e-8, max(|a| + |n|))`` between two arrays of one shape (Chapter 5)."""
    a = _real_array("analytic", analytic)
    n = _real_array("numerical", numerical)
    if a.shape != n.shape:
        raise ValueError(
            f"analytic and numerical must have one shape, got {a.shape} and {n.shape}; "
            "compare the gradient of one parameter array with its own numerical estimate"
        )
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / _scale(a, n))


def _real_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a finite float64 array; integers are accepted (they are exact numbers here)."""
    array = _checks.as_array(name, value) if not isinstance(value, str) else np.array(value, object)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(
            f"{name} must be an array of real numbers, got {_checks.describe(value)}; pass the "
            "gradient as a float array"
        )
    return _checks.float_array(name, array.astype(np.float64, copy=False))


def _scale(a: np.ndarray, n: np.ndarray) -> float:
    """The denominator of :func:`relative_error`."""
    return max(1e-8, float(np.max(np.abs(a) + np.abs(n), initial=0.0)))


@dataclass
class ParamCheck:
    """The check of one parameter array: how it was probed and the errors found.

    ``rel_error`` is the book's relative error of the analytic gradient; ``fd_error`` is the
    estimated error of the numerical gradient itself, in the same relative units; the check
    passes when ``rel_error <= tol + fd_error``. Explained in Chapter 5.
    """

    name: str
    shape: tuple[int, ...]
    checked: int
    mode: str
    max_abs_diff: float
    rel_error: float
    fd_error: float
    ok: bool
    analytic: np.ndarray = field(repr=False)
    numerical: np.ndarray = field(repr=False)
    bound: np.ndarray = field(repr=False)
    step: np.ndarray = field(repr=False)


@dataclass
class GradcheckReport:
    """Per-parameter results of :func:`gradcheck`; ``passed`` when every parameter passes.

    ``noise`` is the measured standard deviation of the rounding noise of the loss. Explained in
    Chapter 5.
    """

    checks: dict[str, ParamCheck]
    tol: float
    eps: float
    method: str = "richardson"
    noise: float = 0.0

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over all parameters."""
        return max((c.rel_error for c in self.checks.values()), default=0.0)

    @property
    def max_fd_error(self) -> float:
        """The largest estimated error of the finite differences over all parameters."""
        return max((c.fd_error for c in self.checks.values()), default=0.0)

    @property
    def passed(self) -> bool:
        """True when every parameter's relative error is at most ``tol`` plus its ``fd_error``."""
        return all(c.ok for c in self.checks.values())

    @property
    def coarse(self) -> list[str]:
        """Parameters whose finite differences are too inaccurate to see a 0.1 % error."""
        return [c.name for c in self.checks.values() if not c.fd_error <= COARSE]

    @property
    def conclusive(self) -> bool:
        """True when every parameter was checked finely enough to see a 0.1 % error."""
        return not self.coarse

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
                "fd error": c.fd_error,
                "ok": c.ok,
            }
            for c in self.checks.values()
        ]

    def __str__(self) -> str:
        head = (
            f"{'parameter':<10} {'shape':<12} {'checked':>8} {'mode':<10} "
            f"{'rel. error':>10} {'fd error':>9}  ok"
        )
        lines = [head, "-" * len(head)]
        for row in self.rows():
            lines.append(
                f"{row['parameter']:<10} {row['shape']!s:<12} {row['checked']:>8} "
                f"{row['mode']:<10} {row['relative error']:>10.2e} {row['fd error']:>9.1e}  "
                f"{'yes' if row['ok'] else 'NO'}"
            )
        verdict = "FAILED" if not self.passed else "PASSED" if self.conclusive else "INCONCLUSIVE"
        lines.append(
            f"{verdict}: max relative error {self.max_rel_error:.2e} "
            f"(tolerance {self.tol:g} + fd error)"
        )
        if self.coarse:
            lines.append(self._coarse_message())
        return "\n".join(lines)

    def _coarse_message(self) -> str:
        worst = max(self.checks[k].fd_error for k in self.coarse)
        if math.isinf(worst):
            why = "its finite differences at different steps never agreed, so any error would pass"
        else:
            why = (
                f"its finite differences are accurate only to {worst:.0e}, so an error that small "
            )
            why += "would pass"
        return (
            f"gradcheck is inconclusive for {self.coarse}: {why}; use float64 parameters, the "
            "default eps, and a point where these gradients are not tiny beside the loss "
            "(Chapter 5)"
        )


def _loss_of(f: Callable[[Params], Any], params: Params) -> float:
    return _loss_value(f(params))


def _loss_value(out: Any) -> float:
    """The loss from what ``f`` returned: a number, a :class:`bptt.BPTTResult`, or a tuple whose
    first item is the loss."""
    value = out[0] if isinstance(out, tuple | BPTTResult) else out
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"f(params) must return the loss as a number (or a result or tuple starting with it), "
            f"got {type(value).__name__}; return the loss first"
        ) from None


def gradcheck(
    f: Callable[[Any], Any],
    params: Mapping[str, np.ndarray] | Model,
    *,
    grads: Mapping[str, np.ndarray] | None = None,
    eps: float = DEFAULT_EPS,
    tol: float = DEFAULT_TOLERANCE,
    method: str = "richardson",
    noise: float | None = None,
    max_entries: int | None = None,
    directions: int = 0,
    rng: np.random.Generator | int = 0,
) -> GradcheckReport:
    """Compare analytic gradients with finite differences, parameter by parameter.

    Parameters
    ----------
    f : callable
        ``f(params)`` returns the loss, or what :func:`bptt.loss_and_grads` returns (a
        :class:`bptt.BPTTResult`: the loss and the analytic gradients), or a tuple whose first
        two items are the loss and the gradients.
    params : dict or bptt.Model
        The point at which to check; its arrays are perturbed in place and restored. For a
        :class:`bptt.Model`, ``f`` is called with the model and its ``params`` are checked:
        ``bptt.gradcheck(lambda m: bptt.loss_and_grads(m, inputs, targets), model)``.
    grads : dict, optional
        Analytic gradients; taken from ``f(params)[1]`` when omitted.
    eps : float
        The first step. With ``method="richardson"`` each derivative is estimated by the
        Richardson extrapolation ``(4 D(h/2) - D(h)) / 3`` of centred differences ``D`` (error
        O(h**4)) at ``h = eps`` and ``h = eps / 100``, and at ``eps / 10**4`` too while the
        last two estimates disagree by more than rounding explains. Each estimate's error is
        bounded (rounding, plus truncation judged from its disagreement with the next smaller
        step) and the one with the smallest bound is kept. With ``method="centred"``, the plain
        centred difference ``(f(p + eps) - f(p - eps)) / (2 eps)`` at ``eps`` only, bounded for
        rounding alone.
    tol : float
        Largest acceptable relative error (see :func:`relative_error`) beyond the estimated error
        of the finite differences themselves.
    method : {"richardson", "centred"}
        The difference formula; see ``eps``.
    noise : float, optional
        Standard deviation of the rounding noise of ``f`` near ``params`` (never taken below half
        an ulp of the loss). Measured by :func:`measure_noise` when omitted.
    max_entries : int, optional
        Check at most this many randomly chosen entries of each parameter (all when None).
    directions : int
        If > 0, instead check this many random unit directions per parameter: the directional
        derivative along ``v`` against ``<grad, v>``. Its cost does not grow with the parameter's
        size: the check for large models.
    rng : numpy.random.Generator or int
        Chooses the entries, the directions and the directions of the noise measurement.

    Returns
    -------
    GradcheckReport
        Per-parameter relative errors and finite-difference errors; ``report.passed`` and
        ``str(report)`` (a table).

    Explained in Chapter 5.
    """
    if not callable(f):
        raise TypeError(
            f"f must be callable as f(params), got {_checks.describe(f)}; pass e.g. "
            "lambda p: bptt.loss_and_grads(p, inputs, targets)"
        )
    if isinstance(params, Model):  # perturb the model's arrays in place, call f with the model
        model = params
        model_f: Callable[[Any], Any] = f
        params = model.params

        def f(_: Params) -> Any:
            return model_f(model)

    if not isinstance(params, Mapping) or not params:
        raise TypeError(
            "params must be a non-empty mapping of parameter arrays, got "
            f"{_checks.describe(params)}; pass e.g. the dict from bptt.init_params"
        )
    eps = _checks.positive_float("eps", eps)
    tol = _checks.positive_float("tol", tol)
    if method not in METHODS:
        raise ValueError(
            f"method must be one of {list(METHODS)}, got {method!r}; use the default "
            "'richardson' unless you study the plain centred difference"
        )
    if noise is not None:
        noise = _checks.positive_float("noise", noise, allow_zero=True)
    directions = _checks.positive_int("directions", directions, minimum=0)
    if max_entries is not None:
        max_entries = _checks.positive_int("max_entries", max_entries)
    gen = as_generator(rng)
    for name, value in params.items():
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"params[{name!r}] must be a numpy array (gradcheck perturbs it in place), got "
                f"{_checks.describe(value)}; convert it with np.asarray(..., dtype=np.float64)"
            )
        array = _checks.float_array(f"params[{name!r}]", value)
        if not array.flags.writeable:
            raise ValueError(
                f"params[{name!r}] is read-only, but gradcheck perturbs it in place; pass a "
                "writable copy (np.array(value))"
            )
        if array.dtype != np.float64:
            warnings.warn(
                f"params[{name!r}] is {array.dtype}: finite differences in low precision are "
                "dominated by rounding error (Chapter 5); check in float64",
                stacklevel=2,
            )
    out = f(params)
    if grads is None:
        returned = isinstance(out, tuple | BPTTResult) and len(out) >= 2
        if not (returned and isinstance(out[1], Mapping)):
            raise ValueError(
                "grads was not given and f(params) did not return (loss, grads, ...); return "
                f"the gradients from f or pass grads=, got {type(out).__name__}"
            )
        grads = out[1]
    _checks.gradient_mapping("grads", grads, params)
    for name in params:
        _checks.float_array(f"grads[{name!r}]", grads[name])  # no NaN or inf
    loss = _loss_value(out)
    if not np.isfinite(loss):
        raise ValueError(f"f(params) returned a non-finite loss ({loss}); check at a finite point")
    if noise is None:
        noise = measure_noise(f, params, gen, loss=loss)
    # Never below half an ulp of the loss: the rounding of the last operation that made it.
    noise = max(noise, 0.5 * _machine_eps(params) * abs(loss))

    checks: dict[str, ParamCheck] = {}
    for name, p in params.items():
        g = np.asarray(grads[name], dtype=np.float64)
        vs: list[np.ndarray] | list[int]  # unit directions, or flat indices of entries
        if directions:
            draws = [gen.standard_normal(p.shape) for _ in range(directions)]
            vs = [v / np.linalg.norm(v) for v in draws]
            analytic = np.array([float(np.sum(g * v)) for v in vs])
            mode, checked = "directions", directions
        else:
            flat_idx = np.arange(p.size)
            if max_entries is not None and max_entries < p.size:
                flat_idx = np.sort(gen.choice(p.size, size=max_entries, replace=False))
            vs = [int(i) for i in flat_idx]
            analytic = g.reshape(-1)[flat_idx]
            mode = "all" if flat_idx.size == p.size else "sampled"
            checked = int(flat_idx.size)
        estimates = [_derivative(f, params, name, v, eps, method, noise) for v in vs]
        numerical = np.array([e[0] for e in estimates])
        bound = np.array([e[1] for e in estimates])
        step = np.array([e[2] for e in estimates])
        if not np.all(np.isfinite(numerical)):
            raise ValueError(
                f"f is not finite within eps = {eps:g} of params[{name!r}] (a step reached a NaN "
                "or inf loss); use a smaller eps or check at another point"
            )
        scale = _scale(analytic, numerical) if analytic.size else 1e-8
        rel = relative_error(analytic, numerical)
        fd = float(np.max(bound, initial=0.0)) / scale
        checks[name] = ParamCheck(
            name=name,
            shape=tuple(p.shape),
            checked=checked,
            mode=mode,
            max_abs_diff=float(np.max(np.abs(analytic - numerical), initial=0.0)),
            rel_error=rel,
            fd_error=fd,
            ok=bool(rel <= tol + fd),
            analytic=analytic,
            numerical=numerical,
            bound=bound,
            step=step,
        )
    report = GradcheckReport(checks=checks, tol=tol, eps=eps, method=method, noise=noise)
    if not report.conclusive:
        warnings.warn(report._coarse_message(), stacklevel=2)
    return report


Direction = int | np.ndarray
"""One entry of a parameter (its flat index) or a unit direction array of the parameter's shape."""


def _shifted(
    f: Callable[[Params], Any], params: Mapping[str, np.ndarray], name: str, v: Direction, h: float
) -> float:
    """``f`` with ``params[name]`` moved by ``h`` along ``v`` in place, then restored exactly."""
    p = params[name]
    if isinstance(v, int):
        # Index the array itself (not a reshaped copy), so that a view is really perturbed.
        where = np.unravel_index(v, p.shape)
        original = p[where]
        p[where] = original + h
        try:
            return _loss_of(f, params)  # type: ignore[arg-type]
        finally:
            p[where] = original
    original_array = p.copy()
    p[...] = original_array + h * v
    try:
        return _loss_of(f, params)  # type: ignore[arg-type]
    finally:
        p[...] = original_array


def finite_difference(
    f: Callable[[Params], Any],
    params: Mapping[str, np.ndarray],
    name: str,
    direction: Direction,
    h: float,
    *,
    method: str = "richardson",
) -> float:
    """One finite-difference estimate, at step ``h``, of the derivative of ``f`` along a direction.

    ``direction`` is a flat index into ``params[name]`` (one entry) or a unit array of its shape.
    ``method="centred"`` gives ``(f(p + h v) - f(p - h v)) / (2 h)``; ``"richardson"`` gives the
    extrapolation ``(4 D(h/2) - D(h)) / 3`` of two of them. ``params`` is restored exactly.
    :func:`gradcheck` uses these at several steps and bounds their errors. Explained in Chapter 5.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}; pick one of them")
    h = _checks.positive_float("h", h)
    return (_richardson if method == "richardson" else _centred)(f, params, name, direction, h)


def _centred(f: Callable[[Params], Any], params: Any, name: str, v: Direction, h: float) -> float:
    """The centred difference ``(f(p + h v) - f(p - h v)) / (2 h)``."""
    return (_shifted(f, params, name, v, h) - _shifted(f, params, name, v, -h)) / (2 * h)


def _richardson(
    f: Callable[[Params], Any], params: Any, name: str, v: Direction, h: float
) -> float:
    """``(4 D(h/2) - D(h)) / 3``: the h**2 error terms of the centred differences cancel."""
    return (4 * _centred(f, params, name, v, h / 2) - _centred(f, params, name, v, h)) / 3


def _derivative(
    f: Callable[[Params], Any],
    params: Any,
    name: str,
    v: Direction,
    eps: float,
    method: str,
    noise: float,
) -> tuple[float, float, float]:
    """The derivative of ``f`` along ``v``: ``(estimate, bound on its error, step used)``.

    ``rounding / h`` bounds the rounding error of an estimate at step ``h``. For Richardson
    differences the truncation error is judged from the gap to the estimate at a step 100 times
    smaller: the steps go down (at most ``STEPS`` of them) while that gap is larger than the
    smaller step's rounding bound, and the estimate with the smallest bound wins. If no two
    steps agree, the bound is infinite: the check is inconclusive there.
    """
    rounding = NOISE_SIGMAS * NOISE_GAIN[method] * noise
    if method == "centred":
        return _centred(f, params, name, v, eps), rounding / eps, eps
    h = eps
    estimate = _richardson(f, params, name, v, h)
    best = (estimate, math.inf, h)
    for _ in range(STEPS - 1):
        smaller = _richardson(f, params, name, v, h * SMALL_STEP_RATIO)
        gap = abs(estimate - smaller)
        if rounding / h + gap < best[1]:
            best = (estimate, rounding / h + gap, h)
        if gap <= rounding / (h * SMALL_STEP_RATIO):
            return best  # the gap is rounding: smaller steps would only add noise
        h, estimate = h * SMALL_STEP_RATIO, smaller
    # No two steps agreed to within rounding: the loss changes too fast at this point for any of
    # the steps tried, and nothing bounds the error of the estimate.
    return best[0], math.inf, best[2]


def _machine_eps(params: Mapping[str, np.ndarray]) -> float:
    """The machine epsilon of the lowest precision among the parameters."""
    return max(float(np.finfo(np.asarray(p).dtype).eps) for p in params.values())


def measure_noise(
    f: Callable[[Params], Any],
    params: Mapping[str, np.ndarray],
    rng: np.random.Generator | int = 0,
    *,
    loss: float | None = None,
    directions: int = 3,
) -> float:
    """Standard deviation of the rounding noise in the values of ``f`` near ``params``.

    Along each of a few random unit directions ``v`` (over all parameters together), ``f`` is
    evaluated at ten points ``p + k s v`` very close together (``s`` is the square root of the
    machine epsilon) and the sixth differences of those values are formed. For a smooth ``f``
    the smooth part of a sixth difference is of order ``s**6``, nothing; what remains is rounding
    noise, and for independent errors of standard deviation ``sigma`` a sixth difference has
    variance ``C(12, 6) sigma**2 = 924 sigma**2``. The estimate is never below half an ulp of
    the loss, the rounding of its last operation. ``params`` is restored exactly.

    Explained in Chapter 5.
    """
    directions = _checks.positive_int("directions", directions)
    gen = as_generator(rng)
    names = list(params)
    machine_eps = _machine_eps(params)
    if loss is None:
        loss = _loss_of(f, params)  # type: ignore[arg-type]
    step = math.sqrt(machine_eps)
    originals = {k: np.array(params[k], copy=True) for k in names}
    order, points = NOISE_ORDER, NOISE_POINTS
    sixth: list[float] = []
    try:
        for _ in range(directions):
            v = {k: gen.standard_normal(originals[k].shape) for k in names}
            norm = math.sqrt(sum(float(np.sum(a * a)) for a in v.values()))
            values = []
            for k in range(points):
                for n in names:
                    params[n][...] = originals[n] + (k * step / norm) * v[n]
                values.append(_loss_of(f, params))  # type: ignore[arg-type]
            sixth.extend(np.diff(np.array(values), n=order).tolist())
    finally:
        for n in names:
            params[n][...] = originals[n]
    sigma = math.sqrt(float(np.mean(np.square(sixth))) / math.comb(2 * order, order))
    return max(sigma, 0.5 * machine_eps * abs(loss))
