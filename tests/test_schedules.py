"""Learning-rate schedules (bptt/optim.py) and their use by the trainer and the command line
(Appendix A1): the rate at each step, their checks, their storage in a snapshot, and Chapter 4's
stable recipe expressed as a schedule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from cli_helpers import run_in_process

import bptt
from bptt.app.snapshot import load_model, load_snapshot
from bptt.app.train import CharModelTrainer, TrainConfig
from bptt.optim import ConstantLR, CosineLR, StepLR, lr_schedule_from_dict

TEXT = bptt.zen_of_python()


def test_the_step_schedule_of_chapter_4():
    """0.05 for the first 3500 of 5000 steps, then 0.01: exactly those numbers."""
    recipe = StepLR(milestones=(3500,), rates=(0.01,))
    rates = [recipe(step, 0.05) for step in range(5000)]
    assert rates[:3500] == [0.05] * 3500 and rates[3500:] == [0.01] * 1500
    two = StepLR(milestones=[10, 20], rates=[0.5, 0.25])  # lists are accepted, kept as tuples
    assert [two(s, 1.0) for s in (0, 9, 10, 19, 20, 99)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert two.milestones == (10, 20)


def test_warm_up_then_constant_and_cosine():
    warm = ConstantLR(warmup=4)
    assert [warm(s, 0.1) for s in range(6)] == [0.1 * k / 4 for k in (1, 2, 3, 4)] + [0.1, 0.1]
    cosine = CosineLR(total_steps=110, min_rate=0.001, warmup=10)
    rates = np.array([cosine(s, 0.1) for s in range(130)])
    assert rates[9] == 0.1 and rates[10] == 0.1  # the warm-up ends at the base rate
    assert np.all(np.diff(rates[10:111]) < 0)  # then decreases ...
    assert rates[110] == pytest.approx(0.001, abs=1e-15) and np.all(rates[110:] == rates[110])
    assert rates[60] == pytest.approx(0.001 + (0.1 - 0.001) / 2)  # half-way: the mean


def test_schedules_round_trip_through_json():
    for schedule in (
        ConstantLR(warmup=3),
        StepLR(milestones=(5, 9), rates=(0.01, 0.001), warmup=2),
        CosineLR(total_steps=50, min_rate=0.0),
    ):
        spec = json.loads(json.dumps(schedule.to_dict()))
        assert lr_schedule_from_dict(spec) == schedule


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: StepLR(milestones=(), rates=()), ValueError, "at least one"),
        (lambda: StepLR(milestones=(5, 5), rates=(1, 2)), ValueError, "milestones must increase"),
        (lambda: StepLR(milestones=(0,), rates=(1,)), ValueError, r"milestones\[0\]"),
        (lambda: StepLR(milestones=(5,), rates=(1, 2)), ValueError, "one rate per milestone"),
        (lambda: StepLR(milestones=(5,), rates=(-1,)), ValueError, r"rates\[0\]"),
        (lambda: StepLR(milestones=(5,), rates=(1,), warmup=6), ValueError, "first milestone"),
        (lambda: StepLR(milestones="5", rates=(1,)), TypeError, "milestones"),
        (lambda: ConstantLR(warmup=-1), ValueError, "warmup must be an integer >= 0"),
        (lambda: CosineLR(total_steps=0), ValueError, "total_steps"),
        (lambda: CosineLR(total_steps=5, warmup=5), ValueError, "warmup must be below"),
        (lambda: CosineLR(total_steps=5, min_rate=-1), ValueError, "min_rate"),
        (lambda: lr_schedule_from_dict({"name": "exp"}), ValueError, "'name' is one of"),
        (lambda: lr_schedule_from_dict({"name": "constant", "x": 1}), TypeError, "'x'"),
    ],
)
def test_bad_schedules_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_checks_against_the_rate_and_the_run():
    with pytest.raises(ValueError, match="milestones must be below the run's 100 steps"):
        StepLR(milestones=(100,), rates=(0.01,)).check(0.1, total_steps=100)
    StepLR(milestones=(99,), rates=(0.01,)).check(0.1, total_steps=100)
    with pytest.raises(ValueError, match=r"min_rate must be below the base learning rate 0\.1"):
        CosineLR(total_steps=10, min_rate=0.1).check(0.1)
    with pytest.raises(ValueError, match="warmup must be below the run's 10 steps"):
        ConstantLR(warmup=10).check(0.1, total_steps=10)
    with pytest.raises(ValueError, match="min_rate"):
        CharModelTrainer(TEXT, TrainConfig(lr_schedule=CosineLR(total_steps=9, min_rate=1.0)))
    with pytest.raises(TypeError, match="lr_schedule must be a schedule"):
        CharModelTrainer(TEXT, TrainConfig(lr_schedule=0.5))  # type: ignore[arg-type]


def chapter_4_style(config: TrainConfig, phases: list[tuple[int, float]]) -> CharModelTrainer:
    """Chapter 4's way: set the optimiser's rate by hand, phase after phase."""
    trainer = CharModelTrainer(TEXT, config)
    for steps, rate in phases:
        trainer.optimizer.learning_rate = rate
        trainer.train(steps)
    return trainer


SMALL = {"hidden_size": 16, "seq_length": 20}


def test_a_schedule_gives_chapter_4s_hand_made_phases_bit_for_bit():
    recipe = TrainConfig(**SMALL, learning_rate=0.05)
    by_hand = chapter_4_style(recipe, [(140, 0.05), (60, 0.01)])
    scheduled = TrainConfig(
        **SMALL, learning_rate=0.05, lr_schedule=StepLR(milestones=(140,), rates=(0.01,))
    )
    trainer = CharModelTrainer(TEXT, scheduled)
    trainer.train(200)
    for name in by_hand.params:
        np.testing.assert_array_equal(trainer.params[name], by_hand.params[name])
    constant = CharModelTrainer(TEXT, TrainConfig(**SMALL, learning_rate=0.05))
    constant.train(200)
    assert not np.array_equal(constant.params["W_hh"], trainer.params["W_hh"])  # it mattered


def test_the_command_line_expresses_the_recipe_and_matches_the_trainer(tmp_path):
    """``--lr 0.05 --lr-schedule step --lr-milestones M --lr-rates 0.01`` = the trainer with the
    same StepLR = Chapter 4's two phases, to the last bit (here 200 steps, milestone 140)."""
    (tmp_path / "zen.txt").write_text(TEXT, encoding="utf-8")
    args = ["train", "zen.txt", "--hidden-size", "16", "--seq-length", "20", "--no-progress",
            "--sample-every", "0", "--lr", "0.05", "--steps", "200", "--lr-schedule", "step",
            "--lr-milestones", "140", "--lr-rates", "0.01", "--snapshot", "cli.npz"]  # fmt: skip
    code, out, err = run_in_process(args, tmp_path)
    assert code == 0, err
    assert "StepLR(warmup=0, milestones=(140,), rates=(0.01,))" in out
    schedule = StepLR(milestones=(140,), rates=(0.01,))
    trainer = CharModelTrainer(TEXT, TrainConfig(**SMALL, learning_rate=0.05, lr_schedule=schedule))
    trainer.train(200)
    by_hand = chapter_4_style(TrainConfig(**SMALL, learning_rate=0.05), [(140, 0.05), (60, 0.01)])
    cli_params = load_model(tmp_path / "cli.npz")[0]
    for name in trainer.params:
        np.testing.assert_array_equal(cli_params[name], trainer.params[name])
        np.testing.assert_array_equal(cli_params[name], by_hand.params[name])
    stored = load_snapshot(tmp_path / "cli.npz").metadata["config"]["lr_schedule"]
    assert stored == {"name": "step", "warmup": 0, "milestones": [140], "rates": [0.01]}


@pytest.mark.parametrize(
    "schedule",
    [
        CosineLR(total_steps=60, min_rate=0.001, warmup=5),
        StepLR(milestones=(20, 40), rates=(0.05, 0.01), warmup=3),
        ConstantLR(warmup=30),
    ],
    ids=["cosine", "step", "warmup"],
)
def test_the_schedule_is_stored_and_a_resumed_run_continues_bit_for_bit(tmp_path, schedule):
    config = {**SMALL, "optimizer": "adam", "learning_rate": 0.01, "lr_schedule": schedule}
    straight = CharModelTrainer(TEXT, TrainConfig(**config))
    straight.train(60)
    first = CharModelTrainer(TEXT, TrainConfig(**config))
    first.train(25)  # inside the warm-up of the third, before a milestone of the second
    resumed = CharModelTrainer.load(first.save(tmp_path / "s.npz"), TEXT)
    assert resumed.config.lr_schedule == schedule
    resumed.train(35)
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name])
    assert resumed.optimizer.learning_rate == straight.optimizer.learning_rate


def test_no_schedule_leaves_the_optimisers_rate_alone():
    """Without a schedule the trainer never sets the rate (Chapter 4 sets it by hand)."""
    trainer = CharModelTrainer(TEXT, TrainConfig(**SMALL))
    trainer.optimizer.learning_rate = 0.0123
    trainer.train(3)
    assert trainer.optimizer.learning_rate == 0.0123
    assert TrainConfig(lr_schedule=ConstantLR()).lr_schedule is None  # the same training
    assert math.isclose(
        TrainConfig(lr_schedule={"name": "constant", "warmup": 2}).lr_schedule.warmup, 2
    )
