"""The gradient algorithms, each written once against the cell protocol (:mod:`bptt.cells`).

- full BPTT step by step (:mod:`~bptt.algorithms.stepwise`, Chapter 4), on one plain loop
  (:mod:`~bptt.algorithms.loop`), and vectorised: for the tanh RNN
  (:mod:`~bptt.algorithms.vectorised`) and for every cell, squared error and masks
  (:mod:`~bptt.algorithms.vectorised_gated`);
- truncated BPTT(k1, k2) (:mod:`~bptt.algorithms.truncation`, Chapter 6) and ARTBP
  (:mod:`~bptt.algorithms.artbp`, Chapter 7);
- RTRL (:mod:`~bptt.algorithms.rtrl`, Chapters 7 and 12), UORO (:mod:`~bptt.algorithms.uoro`,
  Chapter 12) and online learning with any of them (:mod:`~bptt.algorithms.online`, Chapter 7);
- checkpointed BPTT (:mod:`~bptt.algorithms.checkpointing`, Chapter 8);
- BPTT through a diagonal linear recurrence by parallel scan (:mod:`~bptt.algorithms.scan`,
  Chapter 12).

Algorithms may import the cells, the model pieces (params, readout, losses) and each other, never
the application or the experiments.
"""

from bptt.algorithms.artbp import ARTBPResult, ConstantTruncation, PowerLawTruncation, artbp
from bptt.algorithms.checkpointing import (
    CheckpointedResult,
    Schedule,
    evenly_spaced_schedule,
    hsm_cost_table,
    ism_cost_table,
    loss_and_grads_checkpointed,
    optimal_forward_steps,
    optimal_schedule,
)
from bptt.algorithms.loop import loss_and_grads_loop
from bptt.algorithms.online import online_sgd
from bptt.algorithms.result import BPTTResult
from bptt.algorithms.rtrl import rtrl
from bptt.algorithms.scan import (
    LinearGrads,
    ScanResult,
    linear_recurrence,
    linear_recurrence_backward,
    scan_linear,
    scan_linear_backward,
)
from bptt.algorithms.stepwise import (
    backward_stepwise,
    check_mask,
    forward_stepwise,
    loss_and_grads_stepwise,
)
from bptt.algorithms.truncation import TBPTTResult, tbptt, truncation_mask
from bptt.algorithms.uoro import uoro
from bptt.algorithms.vectorised import RNNCache, loss_and_grads, rnn_backward, rnn_forward

__all__ = [
    "ARTBPResult",
    "BPTTResult",
    "CheckpointedResult",
    "ConstantTruncation",
    "LinearGrads",
    "PowerLawTruncation",
    "RNNCache",
    "ScanResult",
    "Schedule",
    "TBPTTResult",
    "artbp",
    "backward_stepwise",
    "check_mask",
    "evenly_spaced_schedule",
    "forward_stepwise",
    "hsm_cost_table",
    "ism_cost_table",
    "linear_recurrence",
    "linear_recurrence_backward",
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
    "scan_linear",
    "scan_linear_backward",
    "tbptt",
    "truncation_mask",
    "uoro",
]
