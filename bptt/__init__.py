"""bptt: Backpropagation Through Time, executable.

A small numpy package for training recurrent networks, grown chapter by chapter by the book
*Backpropagation Through Time, executable*. The main entry points::

    import numpy as np, bptt
    params = bptt.init_params(input_size=D, hidden_size=H, output_size=V, rng=0)
    loss, grads, h_last = bptt.loss_and_grads(params, inputs, targets)
    report = bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets), params)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .artbp import ConstantTruncation, PowerLawTruncation, artbp
from .cells import TANH, Cell, Params, TanhCell
from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from .checkpointing import (
    CheckpointedResult,
    Schedule,
    evenly_spaced_schedule,
    hsm_cost_table,
    ism_cost_table,
    loss_and_grads_checkpointed,
    optimal_forward_steps,
    optimal_schedule,
)
from .clip import clip_by_global_norm, clip_by_value, global_norm
from .data import Vocabulary, pydoc_topics, read_text, zen_of_python
from .gradcheck import GradcheckReport, gradcheck, relative_error
from .gru import GRU, GRUCell
from .influence import InfluenceCell, influence_problem, rtrl
from .loop import loss_and_grads_loop
from .losses import log_softmax, softmax, softmax_cross_entropy, squared_error
from .memory import BPTTMemory, bptt_memory, measure_peak_bytes
from .online import online_sgd
from .optim import SGD, Adagrad, Adam, Optimizer, make_optimizer
from .params import ModelSizes, check_params, init_params
from .readout import readout_backward, readout_forward
from .rnn import RNNCache, loss_and_grads, rnn_backward, rnn_forward
from .sampling import sample
from .stepwise import backward_stepwise, forward_stepwise, loss_and_grads_stepwise
from .tasks import adding_problem
from .train import CharModelTrainer, TrainConfig, TrainHistory
from .truncation import TBPTTResult, tbptt, truncation_mask
from .worked_example import (
    ScalarTrace,
    StepContributions,
    per_step_contributions,
    steps_to_fall_below,
    total_derivative_by_paths,
    trace_scalar_rnn,
)

try:
    __version__ = version("bptt")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "GRU",
    "SGD",
    "TANH",
    "Adagrad",
    "Adam",
    "BPTTMemory",
    "Cell",
    "CharModelTrainer",
    "CheckpointError",
    "CheckpointedResult",
    "ConstantTruncation",
    "GRUCell",
    "GradcheckReport",
    "InfluenceCell",
    "ModelSizes",
    "Optimizer",
    "Params",
    "PowerLawTruncation",
    "RNNCache",
    "ScalarTrace",
    "Schedule",
    "StepContributions",
    "TBPTTResult",
    "TanhCell",
    "TrainConfig",
    "TrainHistory",
    "Vocabulary",
    "__version__",
    "adding_problem",
    "artbp",
    "backward_stepwise",
    "bptt_memory",
    "check_params",
    "clip_by_global_norm",
    "clip_by_value",
    "evenly_spaced_schedule",
    "forward_stepwise",
    "global_norm",
    "gradcheck",
    "hsm_cost_table",
    "influence_problem",
    "init_params",
    "ism_cost_table",
    "load_checkpoint",
    "load_model",
    "log_softmax",
    "loss_and_grads",
    "loss_and_grads_checkpointed",
    "loss_and_grads_loop",
    "loss_and_grads_stepwise",
    "make_optimizer",
    "measure_peak_bytes",
    "online_sgd",
    "optimal_forward_steps",
    "optimal_schedule",
    "per_step_contributions",
    "pydoc_topics",
    "read_text",
    "readout_backward",
    "readout_forward",
    "relative_error",
    "rnn_backward",
    "rnn_forward",
    "rtrl",
    "sample",
    "save_checkpoint",
    "softmax",
    "softmax_cross_entropy",
    "squared_error",
    "steps_to_fall_below",
    "tbptt",
    "total_derivative_by_paths",
    "trace_scalar_rnn",
    "truncation_mask",
    "zen_of_python",
]
