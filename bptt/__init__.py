"""bptt: Backpropagation Through Time, executable.

A small numpy package for training recurrent networks, grown chapter by chapter by the book
*Backpropagation Through Time, executable*. The main entry points::

    import numpy as np, bptt
    model = bptt.Model.init(input_size=D, hidden_size=H, output_size=V, rng=0, cell=bptt.GRU)
    loss, grads, h_last = bptt.loss_and_grads(model, inputs, targets)
    report = bptt.gradcheck(lambda m: bptt.loss_and_grads(m, inputs, targets), model)

The package has two faces. The library, exported here, is layered bottom up: cells
(:mod:`bptt.cells`), the model pieces (:mod:`bptt.params`, :mod:`bptt.readout`,
:mod:`bptt.losses`), the gradient algorithms (:mod:`bptt.algorithms`), tools (gradient checking,
clipping, optimisers, dynamics, memory, initialisers) and the application (:mod:`bptt.app`:
data, training, sampling, snapshots, the command line). It needs numpy alone. The book's
experiments (:mod:`bptt.experiments`) use the library and are never imported by it.
"""

from __future__ import annotations

from bptt._version import __version__
from bptt.algorithms import (
    ARTBPResult,
    BPTTResult,
    CheckpointedResult,
    ConstantTruncation,
    LinearGrads,
    PowerLawTruncation,
    RNNCache,
    ScanResult,
    Schedule,
    TBPTTResult,
    artbp,
    backward_stepwise,
    check_mask,
    evenly_spaced_schedule,
    forward_stepwise,
    hsm_cost_table,
    ism_cost_table,
    linear_recurrence,
    linear_recurrence_backward,
    loss_and_grads,
    loss_and_grads_checkpointed,
    loss_and_grads_loop,
    loss_and_grads_stepwise,
    online_sgd,
    optimal_forward_steps,
    optimal_schedule,
    rnn_backward,
    rnn_forward,
    rtrl,
    scan_linear,
    scan_linear_backward,
    tbptt,
    truncation_mask,
    uoro,
)
from bptt.app import (
    CharModelTrainer,
    Snapshot,
    SnapshotError,
    TrainConfig,
    TrainHistory,
    Vocabulary,
    load_model,
    load_snapshot,
    pydoc_topics,
    read_text,
    sample,
    save_snapshot,
    zen_of_python,
)
from bptt.cells import (
    GRU,
    LSTM,
    TANH,
    Cell,
    GRUCell,
    LSTMCell,
    Params,
    StackedCell,
    TanhCell,
    depth_time_gradient_norms,
)
from bptt.cells.stack import stack
from bptt.clip import clip_by_global_norm, clip_by_value, global_norm
from bptt.gradcheck import GradcheckReport, gradcheck, relative_error
from bptt.interop import from_torch, load_safetensors, save_safetensors, to_torch
from bptt.losses import log_softmax, softmax, softmax_cross_entropy, squared_error
from bptt.memory import BPTTMemory, bptt_memory, measure_peak_bytes
from bptt.model import Model
from bptt.optim import SGD, Adagrad, Adam, ConstantLR, CosineLR, Optimizer, StepLR, make_optimizer
from bptt.params import ModelSizes, check_params, init_params
from bptt.readout import readout_backward, readout_forward

# The practitioner's API, by group (the API reference, Appendix A3, follows the same groups).
__all__ = [  # noqa: RUF022 (grouped as in the API reference, not sorted)
    # cells and models
    "GRU",
    "LSTM",
    "TANH",
    "Cell",
    "GRUCell",
    "LSTMCell",
    "Model",
    "ModelSizes",
    "Params",
    "StackedCell",
    "TanhCell",
    "check_params",
    "depth_time_gradient_norms",
    "init_params",
    "readout_backward",
    "readout_forward",
    "stack",
    # losses
    "log_softmax",
    "softmax",
    "softmax_cross_entropy",
    "squared_error",
    # algorithms: full, truncated, randomised, checkpointed BPTT; RTRL, UORO; online learning
    "ARTBPResult",
    "BPTTResult",
    "CheckpointedResult",
    "ConstantTruncation",
    "PowerLawTruncation",
    "RNNCache",
    "Schedule",
    "TBPTTResult",
    "artbp",
    "backward_stepwise",
    "check_mask",
    "evenly_spaced_schedule",
    "forward_stepwise",
    "hsm_cost_table",
    "ism_cost_table",
    "loss_and_grads",
    "loss_and_grads_checkpointed",
    "loss_and_grads_loop",
    "loss_and_grads_stepwise",
    "online_sgd",
    "optimal_forward_steps",
    "optimal_schedule",
    "rnn_backward",
    "rnn_forward",
    "rtrl",
    "tbptt",
    "truncation_mask",
    "uoro",
    # linear recurrences: BPTT by parallel scan
    "LinearGrads",
    "ScanResult",
    "linear_recurrence",
    "linear_recurrence_backward",
    "scan_linear",
    "scan_linear_backward",
    # gradient checking
    "GradcheckReport",
    "gradcheck",
    "relative_error",
    # optimisers, learning-rate schedules and clipping
    "SGD",
    "Adagrad",
    "Adam",
    "ConstantLR",
    "CosineLR",
    "Optimizer",
    "StepLR",
    "clip_by_global_norm",
    "clip_by_value",
    "global_norm",
    "make_optimizer",
    # PyTorch interoperability (torch imported only when called)
    "from_torch",
    "load_safetensors",
    "save_safetensors",
    "to_torch",
    # memory
    "BPTTMemory",
    "bptt_memory",
    "measure_peak_bytes",
    # training, sampling, data and snapshots
    "CharModelTrainer",
    "Snapshot",
    "SnapshotError",
    "TrainConfig",
    "TrainHistory",
    "Vocabulary",
    "load_model",
    "load_snapshot",
    "pydoc_topics",
    "read_text",
    "sample",
    "save_snapshot",
    "zen_of_python",
    "__version__",
]
