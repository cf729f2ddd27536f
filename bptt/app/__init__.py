"""The application: corpora, training, sampling, snapshots of a training run, the command line.

A *snapshot* (:mod:`~bptt.app.snapshot`) is a saved training state: the model, the optimiser's
state, the random generators and the history, in one ``.npz`` file without pickles. (The word
"checkpointing" is kept for the memory technique of :mod:`bptt.algorithms.checkpointing`.) The
application may import everything of the library, never the experiments. Explained in Chapter 4
and Appendix A1.
"""

from bptt.app.data import Vocabulary, pydoc_topics, read_text, zen_of_python
from bptt.app.sampling import sample
from bptt.app.snapshot import Snapshot, SnapshotError, load_model, load_snapshot, save_snapshot
from bptt.app.train import CharModelTrainer, TrainConfig, TrainHistory

__all__ = [
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
]
