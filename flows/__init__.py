"""Prefect flows over the pipeline's stages: one per stage kind (`fetch`, `prepare`, `mix`, `train`, `evaluate`,
`training_summary`) and `rebuild` (git pull -> dvc pull -> dvc repro -> dvc push -> metrics diff artifact).

Each stage flow runs the same function as its DVC stage (the `run` of `stages/<kind>.py`); only the parallel
parts become Prefect tasks, on the task runner chosen in params.yaml `orchestration`. `stages/` runs these flows
when a Prefect API is configured (`PREFECT_API_URL`), and the plain functions otherwise (no Prefect import).
Importing this package does not import Prefect; its modules do.
"""
STAGE_KINDS = ("fetch", "prepare", "mix", "train", "evaluate", "training_summary")
