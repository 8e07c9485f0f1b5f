"""Flow `fetch`: a built-in corpus, generated (profile demo) or downloaded (profile paper).

Under `paper` every file is first downloaded by its own task, retried with exponential back-off (visible per
attempt in the UI); the recipe then finds the files in the download cache, verifies and extracts them.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from pipeline.config import load_params
from pipeline.corpora import download as downloads
from stages.fetch import run as fetch_stage
from pipeline.orchestration.downloads import PlannedDownload, planned_downloads

TASK_RUNNER = "threads"  # downloads wait on the network, not the CPU
RETRIES = 4
BACKOFF_S = 10.0         # first retry after ~10 s, then 20, 40, 80 (with jitter)


def _worth_retrying(task, task_run, state) -> bool:
    """Retry transient failures (connection errors, 5xx, truncated bodies); not 4xx or checksum mismatches."""
    try:
        state.result()
    except downloads.DownloadError as err:
        return not isinstance(err.__cause__, downloads._FatalHTTPError)
    except Exception:
        return False
    return False


@task(name="download", retries=RETRIES, retry_delay_seconds=exponential_backoff(backoff_factor=BACKOFF_S),
      retry_jitter_factor=0.5, retry_condition_fn=_worth_retrying, cache_policy=NO_CACHE, persist_result=False)
def download_file(item: PlannedDownload, lock: str = downloads.DOWNLOADS_LOCK) -> str:
    """One file into the download cache (resumes a partial `.part`, verifies sha256 when pinned or in `lock`)."""
    downloads.download(item.url, Path(item.dest), sha256=item.sha256, lock=Path(lock), retries=0, progress=False)
    return item.dest


@task(name="fetch-corpus", cache_policy=NO_CACHE, persist_result=False)
def fetch_corpus_task(corpus: str, params: str, out: str, downloads_dir: str, lock: str) -> dict:
    return fetch_stage(corpus, params, out, downloads_dir, lock)


@flow(name="fetch", flow_run_name="fetch@{corpus}")
def fetch_flow(corpus: str, out: str, downloads_dir: str = "data/downloads", params: str = "params.yaml",
               retries: int = RETRIES, backoff_s: float = BACKOFF_S, lock: str = downloads.DOWNLOADS_LOCK) -> dict:
    logger = get_run_logger()
    planned = planned_downloads(corpus, load_params(params), downloads_dir)
    attempt = download_file.with_options(retries=retries, retry_delay_seconds=exponential_backoff(backoff_s))
    futures = [attempt.with_options(task_run_name=f"download {item.name}").submit(item, str(lock)) for item in planned]
    for item, future in zip(planned, futures):
        future.wait()
        if future.state.is_completed():
            continue
        if item.required:
            future.result()  # raises the download's error
        logger.warning("%s: download failed; the fetch report will list it", item.name)
    return fetch_corpus_task(corpus, params, out, downloads_dir, str(lock))


FLOW = fetch_flow
