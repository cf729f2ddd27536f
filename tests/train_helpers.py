"""A check shared by the trainer's tests: two trainers are in the same state, bit for bit."""

from __future__ import annotations

import numpy as np

from bptt.app.train import CharModelTrainer


def assert_same_training_state(a: CharModelTrainer, b: CharModelTrainer) -> None:
    """Everything that decides the next step is equal: parameters (names, dtypes, values), the
    carried state, the position, the step, the losses, the validation record and the generator."""
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        assert a.params[k].dtype == b.params[k].dtype
        np.testing.assert_array_equal(a.params[k], b.params[k])
    np.testing.assert_array_equal(a.h, b.h)
    assert (a.position, a.step_count, a.smoothed_loss) == (
        b.position,
        b.step_count,
        b.smoothed_loss,
    )
    assert list(a.recent_losses) == list(b.recent_losses)
    assert (a.best_val_loss, a.best_step, a.checks_since_best, a.last_validation) == (
        b.best_val_loss,
        b.best_step,
        b.checks_since_best,
        b.last_validation,
    )
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
