"""Training one model variant, resumably and deterministically, on one process or several (DDP).

`setup` resolves what a run is made of, `loop` trains (validation, early stopping), `ddp` is the one
optimisation step for one process or each rank, `resume` checkpoints and restores, `callbacks` lets callers
(tests: fault injection) hook into steps and validations, `run.train_variant` ties them and writes the model
file. Reports are the caller's: `train_variant` returns the curve, summary and timing (`TrainingResult`).
"""
from pipeline.models.train.callbacks import Callback, install, installed, remove
from pipeline.models.train.loop import TrainingDivergedError, TrainingLoop, evaluate_objective
from pipeline.models.train.run import TrainingResult, train_variant
from pipeline.models.train.setup import TrainingSetup, build_model, resolve_setup
from pipeline.models.train.state import TrainingState

__all__ = ["Callback", "TrainingDivergedError", "TrainingLoop", "TrainingResult", "TrainingSetup",
           "TrainingState", "build_model", "evaluate_objective", "install", "installed", "remove", "resolve_setup",
           "train_variant"]
