"""DVC stage `evaluate_scenes@<dataset>`: `enhance`'s own processor on every scene with every candidate model."""
from __future__ import annotations

import json
import os
from pathlib import Path

from stages.common import parser, setup_logging, stage_clock



def run(dataset: str, params: str | Path, scenes: str | Path, models: str | Path, out: str | Path,
        tables: str | Path, timings: str | Path, *, mixtures: str | Path | None = None,
        progress: bool = True) -> dict[str, float | None]:
    """Score the scenes of `dataset` (and, with `mixtures`, the test split's 1-s clips: `enhance` against each
    model alone, `pipeline.enhance.clip_check`); writes `out/scores.parquet`, `out/metrics.json`, the enhanced
    audio of one 0 dB scene per model (`out/examples/<scene>/<model>.{output,dialogue}.flac`), the tables
    `tables/scenes_<dataset>.{csv,md}` and the real-time factors in `timings/evaluate_scenes@<dataset>.json`
    (outside the DVC outputs: they differ on every run)."""
    import torch

    from pipeline.config import load_params
    from pipeline.enhance.registry import streaming_row
    import soundfile as sf

    from pipeline.enhance.clip_check import read_test_clips
    from pipeline.enhance.scenes import SUMMARY_COLUMNS, Candidate, clip_checks, clip_table, evaluate_scenes, \
        listening_scenes, scene_metrics, scene_summary
    from pipeline.mixing.scenes import load_manifest
    from pipeline.evaluation.tables import markdown_table
    from pipeline.shards import write_json

    parsed = load_params(params)
    dialogue = tuple(parsed.evaluate.of(dataset).speech)
    candidates = []
    for variant, config in sorted(parsed.variants.items()):
        row = streaming_row(parsed, variant) if config.dataset == dataset else None
        if row is not None:
            candidates.append(Candidate(variant, Path(models) / variant / "model.pt", dialogue, row.kind))
    if not candidates:
        raise ValueError(f"no variant of {dataset} can be streamed by enhance; nothing to evaluate on its scenes")
    settings = parsed.scenes.enhance
    keep = listening_scenes(load_manifest(Path(scenes)))
    scores, kept = evaluate_scenes(dataset, Path(scenes), candidates, settings, keep=keep, progress=progress)
    clips = None
    if mixtures is not None:
        count = parsed.evaluate.schedule.forward_mixtures
        clips = clip_checks(candidates, *read_test_clips(Path(mixtures), dialogue, count), settings)
    out, tables = Path(out), Path(tables)
    out.mkdir(parents=True, exist_ok=True)
    for (model, scene_id), enhanced in sorted(kept.items()):
        folder = out / "examples" / scene_id
        folder.mkdir(parents=True, exist_ok=True)
        rate = int(scores.loc[scores["scene_id"] == scene_id, "sample_rate"].iloc[0])
        for stem in ("output", "dialogue"):
            sf.write(folder / f"{model}.{stem}.flac", getattr(enhanced, stem), rate, subtype="PCM_24")
    scores.drop(columns=["rtf_offline", "rtf_streaming"]).to_parquet(out / "scores.parquet", index=False)
    metrics = scene_metrics(dataset, scores, clips)
    write_json(out / "metrics.json", metrics)
    table = scene_summary(scores)
    tables.mkdir(parents=True, exist_ok=True)
    table.round(4).to_csv(tables / f"scenes_{dataset}.csv", index=False)
    gains = f"{settings.dialogue_gain_db:+g} dB dialogue, {settings.background_gain_db:+g} dB background"
    (tables / f"scenes_{dataset}.md").write_text(
        f"# {dataset}: `enhance` on long scenes ({gains})\n\n"
        f"Profile `{parsed.profile}`. Medians over the scenes of each dialogue-to-background ratio (every rate and "
        f"channel layout); dB except the ratio change (LU, ideal {settings.dialogue_gain_db - settings.background_gain_db:+g}). "
        f"SI-SDRi: improvement over leaving the mixture as it is. Remix fidelity: SI-SDR of the output against the "
        f"ideal remix of the true stems at the same gains, beside the unprocessed mixture's.\n\n"
        + markdown_table(table, SUMMARY_COLUMNS)
        + ("" if clips is None else clip_table(clips)))
    rtf = scores.groupby("model")[["rtf_offline", "rtf_streaming"]].median().round(4)
    write_json(Path(timings) / f"evaluate_scenes@{dataset}.json",
               {"stage": f"evaluate_scenes@{dataset}", "torch_threads": torch.get_num_threads(),
                "cpu_count": os.cpu_count(), "median_real_time_factor": json.loads(rtf.to_json(orient="index"))})
    return metrics


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("dataset")
    args.add_argument("--scenes", type=Path, required=True, help="scene folder (data/scenes/<dataset>)")
    args.add_argument("--models", type=Path, required=True, help="its trained models (data/models/<dataset>)")
    args.add_argument("--out", type=Path, required=True, help="scores and metrics (data/scene_evaluation/<dataset>)")
    args.add_argument("--mixtures", type=Path, help="its test mixtures (data/mixtures/<dataset>/test): also score "
                      "enhance on the 1-s test clips against each model alone")
    args.add_argument("--tables", type=Path, default=Path("reports/tables"))
    args.add_argument("--timings", type=Path, default=Path("data/timings"),
                      help="real-time factors (outside the DVC outputs)")
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"evaluate_scenes@{ns.dataset}"):
        run(ns.dataset, ns.params, ns.scenes, ns.models, ns.out, ns.tables, ns.timings, mixtures=ns.mixtures,
            progress=not ns.quiet)


if __name__ == "__main__":
    main()
