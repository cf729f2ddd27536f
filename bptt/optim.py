"""Optimisers that update a parameter dict in place: SGD, Adagrad and Adam (Chapter 4), and
learning-rate schedules (Appendix A1).

Each optimiser keeps its state in plain arrays (``state_dict``/``load_state_dict``) so that a
snapshot can store it and training can resume exactly. A schedule is a function of the step
(:class:`ConstantLR`, :class:`StepLR`, :class:`CosineLR`, each with an optional linear warm-up):
it keeps no state, so the step count alone restores it.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from bptt import _checks
from bptt.cells import Params


class Optimizer:
    """Base class: ``step(params, grads)`` updates ``params`` in place.

    Explained in Chapter 4.
    """

    name = "optimizer"

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = _checks.positive_float("learning_rate", learning_rate)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.steps = 0

    def step(self, params: Params, grads: Mapping[str, np.ndarray]) -> None:
        """Apply one update to every parameter from its gradient.

        Everything is checked before anything changes: a missing, misshapen or non-finite
        gradient raises and leaves both ``params`` and the optimiser's state untouched (a NaN or
        inf gradient would otherwise turn every parameter into NaN).
        """
        where = f"{type(self).__name__}.step"
        if not isinstance(params, Mapping):
            raise TypeError(
                f"{where}: params must be a mapping of parameter arrays, got "
                f"{_checks.describe(params)}; pass the dict from bptt.init_params"
            )
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                raise TypeError(
                    f"{where}: params[{name!r}] must be a floating-point numpy array (updated in "
                    f"place), got {_checks.describe(p)}; convert it with np.asarray(..., "
                    "dtype=np.float64)"
                )
        _checks.gradient_mapping("grads", grads, params)
        for name in params:
            g = np.asarray(grads[name])
            if not np.all(np.isfinite(g)):
                bad = int(g.size - np.count_nonzero(np.isfinite(g)))
                raise _checks.NonFiniteError(
                    f"{where}: grads[{name!r}] has {bad} non-finite value(s) (NaN or inf); "
                    f"{self.name} refused the update and changed nothing: the model has diverged, "
                    "so lower the learning rate or clip the gradients (Chapter 9)"
                )
        self.steps += 1
        for name, p in params.items():
            self._update(name, p, np.asarray(grads[name], dtype=p.dtype))

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def _slot(self, name: str, slot: str, like: np.ndarray) -> np.ndarray:
        return self.state.setdefault(name, {}).setdefault(slot, np.zeros_like(like))

    def state_dict(self) -> dict[str, Any]:
        """Arrays and counters that determine future updates (for checkpoints)."""
        arrays = {f"{n}/{s}": a.copy() for n, slots in self.state.items() for s, a in slots.items()}
        return {"name": self.name, "steps": self.steps, "arrays": arrays}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if not isinstance(state, Mapping) or not {"name", "steps", "arrays"} <= set(state):
            raise ValueError(
                "state must be a mapping with the keys 'name', 'steps' and 'arrays', got "
                f"{_checks.describe(state)}; pass what Optimizer.state_dict() returned"
            )
        if state["name"] != self.name:
            raise ValueError(
                f"optimizer state is for {state['name']!r}, not {self.name!r}; load it into "
                f"make_optimizer({state['name']!r}, ...)"
            )
        self.steps = _checks.positive_int("state['steps']", state["steps"], minimum=0)
        self.state = {}
        for key, array in state["arrays"].items():
            param, slot = key.split("/", 1)
            self.state.setdefault(param, {})[slot] = np.array(array)


class SGD(Optimizer):
    """Plain gradient descent, with optional heavy-ball momentum.

    Explained in Chapter 4.
    """

    name = "sgd"

    def __init__(self, learning_rate: float, momentum: float = 0.0) -> None:
        super().__init__(learning_rate)
        self.momentum = _checks.unit_interval("momentum", momentum)

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        if self.momentum:
            v = self._slot(name, "velocity", p)
            v *= self.momentum
            v += g
            g = v
        p -= self.learning_rate * g


class Adagrad(Optimizer):
    """Adagrad: per-entry steps ``lr * g / sqrt(sum of past g**2 + eps)`` (classic char-RNN).

    Explained in Chapter 4.
    """

    name = "adagrad"

    def __init__(self, learning_rate: float, eps: float = 1e-8) -> None:
        super().__init__(learning_rate)
        self.eps = _checks.positive_float("eps", eps)

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        memory = self._slot(name, "sum_sq", p)
        memory += g * g
        p -= self.learning_rate * g / np.sqrt(memory + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected first and second moments.

    Explained in Chapter 4.
    """

    name = "adam"

    def __init__(
        self, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(learning_rate)
        self.beta1 = _checks.unit_interval("beta1", beta1)
        self.beta2 = _checks.unit_interval("beta2", beta2)
        self.eps = _checks.positive_float("eps", eps)

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        m = self._slot(name, "m", p)
        v = self._slot(name, "v", p)
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1**self.steps)
        v_hat = v / (1 - self.beta2**self.steps)
        p -= self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}


def make_optimizer(name: str, learning_rate: float, **options: Any) -> Optimizer:
    """An optimiser by name: ``"sgd"``, ``"adagrad"`` or ``"adam"``.

    Explained in Chapter 4.
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}; pick one of those names"
        )
    cls = OPTIMIZERS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self",)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"options {unknown} are not options of the {name!r} optimizer, which accepts "
            f"{accepted[1:]}; drop them or choose another optimizer"
        )
    return cls(learning_rate, **options)


# -- learning-rate schedules ---------------------------------------------------------------------


def _warmup_steps(value: Any) -> int:
    return _checks.positive_int("warmup", value, minimum=0)


@dataclass(frozen=True, kw_only=True)
class ConstantLR:
    """The base learning rate at every step, after an optional linear warm-up.

    A schedule is a function of the step: ``schedule(step, base_rate)`` is the rate of the
    training step that follows ``step`` completed steps (``step = 0`` for the first one). It
    changes nothing in the optimiser: the caller sets ``optimizer.learning_rate`` to it before each
    step (as :class:`~bptt.app.train.CharModelTrainer` does), so an optimiser's state and a
    snapshot's format stay as they are.

    With ``warmup = W > 0`` the first ``W`` steps rise linearly to the base rate, ``base * (step +
    1) / W``, and the schedule proper starts at step ``W``.

    Explained in Appendix A1 (Chapter 4's stable recipe is a :class:`StepLR`).
    """

    warmup: int = 0
    name: ClassVar[str] = "constant"

    def __post_init__(self) -> None:
        object.__setattr__(self, "warmup", _warmup_steps(self.warmup))

    def __call__(self, step: int, base_rate: float) -> float:
        """The learning rate of the step after ``step`` completed ones, for ``base_rate``."""
        step = _checks.positive_int("step", step, minimum=0)
        if step < self.warmup:
            return base_rate * (step + 1) / self.warmup
        return self._rate(step, base_rate)

    def _rate(self, step: int, base_rate: float) -> float:
        return base_rate

    def check(self, base_rate: float, total_steps: int | None = None) -> None:
        """Raise a ``ValueError`` if the schedule cannot work with ``base_rate`` or would not fit
        in a run of ``total_steps`` steps (a warm-up or a change of rate that never happens)."""
        if total_steps is not None and self.warmup >= total_steps > 0:
            raise ValueError(
                f"warmup must be below the run's {total_steps} steps, got warmup={self.warmup}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The schedule as JSON-compatible values, read back by :func:`lr_schedule_from_dict`."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            "name": self.name,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()},
        }


@dataclass(frozen=True, kw_only=True)
class StepLR(ConstantLR):
    """Piecewise constant: the base rate, then ``rates[i]`` from step ``milestones[i]`` on.

    ``StepLR(milestones=(3500,), rates=(0.01,))`` with base rate 0.05 trains 3500 steps at 0.05
    and every later step at 0.01: the stable recipe of Chapter 4 for a 5000-step run. The rates
    are given as numbers, not as factors of the base rate, so they are exactly the rates asked
    for (0.05 * 0.2 is not 0.01 in floating point).

    Explained in Chapter 4 and Appendix A1.
    """

    milestones: tuple[int, ...]
    rates: tuple[float, ...]
    name: ClassVar[str] = "step"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.milestones, str | bytes) or not isinstance(self.milestones, Iterable):
            raise TypeError(f"milestones must be a sequence of steps, got {self.milestones!r}")
        if isinstance(self.rates, str | bytes) or not isinstance(self.rates, Iterable):
            raise TypeError(f"rates must be a sequence of learning rates, got {self.rates!r}")
        milestones = tuple(
            _checks.positive_int(f"milestones[{i}]", m) for i, m in enumerate(self.milestones)
        )
        rates = tuple(_checks.positive_float(f"rates[{i}]", r) for i, r in enumerate(self.rates))
        if not milestones:
            raise ValueError(
                "milestones must name at least one step where the rate changes, got ()"
            )
        if any(b <= a for a, b in itertools.pairwise(milestones)):
            raise ValueError(f"milestones must increase, got {list(milestones)}")
        if len(rates) != len(milestones):
            raise ValueError(
                f"rates must give one rate per milestone: {len(milestones)} milestone(s) "
                f"{list(milestones)}, got {len(rates)} rate(s) {list(rates)}"
            )
        if self.warmup > milestones[0]:
            raise ValueError(
                f"warmup must end by the first milestone, got warmup={self.warmup}, "
                f"milestones[0]={milestones[0]}"
            )
        object.__setattr__(self, "milestones", milestones)
        object.__setattr__(self, "rates", rates)

    def _rate(self, step: int, base_rate: float) -> float:
        rate = base_rate
        for milestone, new_rate in zip(self.milestones, self.rates, strict=True):
            if step >= milestone:
                rate = new_rate
        return rate

    def check(self, base_rate: float, total_steps: int | None = None) -> None:
        super().check(base_rate, total_steps)
        if total_steps is not None and self.milestones[-1] >= total_steps:
            raise ValueError(
                f"milestones must be below the run's {total_steps} steps (a later one never "
                f"changes the rate), got {list(self.milestones)}"
            )


@dataclass(frozen=True, kw_only=True)
class CosineLR(ConstantLR):
    """Cosine decay from the base rate to ``min_rate`` over ``total_steps`` steps.

    ``min_rate + (base - min_rate) * (1 + cos(pi * s / S)) / 2`` at step ``s`` of ``S``, where both
    are counted after the warm-up (``s = step - warmup``, ``S = total_steps - warmup``); from step
    ``total_steps`` on, ``min_rate``. Loshchilov & Hutter's schedule without restarts.

    Explained in Appendix A1.
    """

    total_steps: int
    min_rate: float = 0.0
    name: ClassVar[str] = "cosine"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self, "total_steps", _checks.positive_int("total_steps", self.total_steps)
        )
        object.__setattr__(
            self, "min_rate", _checks.positive_float("min_rate", self.min_rate, allow_zero=True)
        )
        if self.warmup >= self.total_steps:
            raise ValueError(
                f"warmup must be below total_steps, got warmup={self.warmup}, "
                f"total_steps={self.total_steps}"
            )

    def _rate(self, step: int, base_rate: float) -> float:
        done = min(step, self.total_steps) - self.warmup
        span = self.total_steps - self.warmup
        return (
            self.min_rate + (base_rate - self.min_rate) * (1 + math.cos(math.pi * done / span)) / 2
        )

    def check(self, base_rate: float, total_steps: int | None = None) -> None:
        super().check(base_rate, total_steps)
        if self.min_rate >= base_rate:
            raise ValueError(
                f"min_rate must be below the base learning rate {base_rate}, got {self.min_rate}"
            )


LRSchedule = ConstantLR
"""The type of every learning-rate schedule (the others derive from :class:`ConstantLR`)."""

LR_SCHEDULES: dict[str, type[ConstantLR]] = {
    "constant": ConstantLR,
    "step": StepLR,
    "cosine": CosineLR,
}
"""Learning-rate schedules by name."""


def lr_schedule_from_dict(spec: Mapping[str, Any]) -> ConstantLR:
    """The schedule that :meth:`ConstantLR.to_dict` described (as stored in a snapshot).

    Explained in Appendix A1.
    """
    if not isinstance(spec, Mapping) or spec.get("name") not in LR_SCHEDULES:
        raise ValueError(
            "a learning-rate schedule must be a mapping whose 'name' is one of "
            f"{sorted(LR_SCHEDULES)}, got {_checks.describe(spec)}"
        )
    cls = LR_SCHEDULES[spec["name"]]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(spec) - known - {"name"})
    if unknown:
        raise TypeError(f"{unknown} are not parameters of the {spec['name']!r} schedule")
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k != "name"
    }
    return cls(**values)
