"""How stages run (never what they compute): orchestration settings, fan-out of work inside a stage, DVC calls.

Nothing here imports Prefect: a `dvc repro` without a Prefect server never pays for importing it. The Prefect
side (flows, tasks, task runners, deployments) lives in `flows/`.
"""
