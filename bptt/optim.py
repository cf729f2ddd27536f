"""Optimisers that update a parameter dict in place: SGD, Adagrad and Adam (Chapter 4).

Each keeps its state in plain arrays (``state_dict``/``load_state_dict``) so that a checkpoint can
store it and training can resume exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

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
