"""Evaluation results as a terminal table, a PNG bar chart and a JSON file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from phantoscope.evaluation.runner import PipelineRun
from phantoscope.evaluation.text import TextRun

Run = PipelineRun | TextRun

METRIC_NAMES = ("mAP", "recall", "precision")

DEFINITIONS = {
    "relevant": "an answer of the query's class; the query's own image is removed first",
    "R": "images of the query's class that were indexed, minus the query itself",
    "AP@k": "(1 / min(R, k)) * sum_{i<=k} P@i * rel_i; mAP@k is its mean over queries",
    "recall@k": "relevant answers in the top k / R",
    "precision@k": "relevant answers in the top k / k",
    "queries": "queries with R = 0 are left out of every mean",
    "latency_ms": "wall time of each search request seen by the client, one at a time, "
    "after one unmeasured warm-up query; p95 interpolates linearly",
}


TEXT_DEFINITIONS = {
    **DEFINITIONS,
    "relevant": "an image of one of the classes queries.json lists for the query",
    "R": "indexed images of the query's relevant classes",
    "queries": "each text query once; queries with R = 0 are left out of every mean",
    "terms": "the words (or phrases) the server matched to image classes, with how many "
    "classes each names; unmatched: the words that named none",
    "latency_ms": "wall time of each text search seen by the client, one at a time, "
    "after one unmeasured warm-up query; p95 interpolates linearly",
}


def metric_keys(ks: Sequence[int]) -> list[str]:
    return [f"{name}@{k}" for name in METRIC_NAMES for k in ks]


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def results_table(runs: Sequence[Run], ks: Sequence[int]) -> Table:
    """One row per pipeline: images indexed, each metric@k, latency p50 and p95."""
    by_words = any(isinstance(run, TextRun) for run in runs)
    table = Table(title="Search by words: means over the queries, and search latency"
                  if by_words else "Retrieval quality (self excluded) and search latency")
    table.add_column("pipeline", style="bold")
    table.add_column("images", justify="right")
    for key in metric_keys(ks):
        table.add_column(key, justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    for run in runs:
        metrics, latency = run.metrics(), run.latency_ms()
        table.add_row(
            run.pipeline,
            str(run.indexed),
            *(_number(metrics[key]) for key in metric_keys(ks)),
            _number(latency["p50"], 1),
            _number(latency["p95"], 1),
        )
    return table


def _read_as(terms: Sequence[tuple[str, int]], unmatched: Sequence[str]) -> str:
    words = [f"{word} ({count})" for word, count in terms]
    return ", ".join(words + [f"[dim]{escape(word)}: none[/dim]" for word in unmatched])


def text_table(run: TextRun) -> Table:
    """One row per text query (how the server read it, R, AP@k and precision@k), then the
    means."""
    keys = [f"{name}@{k}" for name in ("AP", "precision") for k in run.ks]
    table = Table(title=f"Search by words on {run.pipeline} ({run.indexed} images)")
    table.add_column("query", style="bold")
    table.add_column("read as (classes)")
    table.add_column("R", justify="right")
    for key in keys:
        table.add_column(key, justify="right")
    for query in run.queries:
        scores = query.scores(run.ks)
        table.add_row(escape(query.text), _read_as(query.terms, query.unmatched),
                      str(query.relevant), *(_number(scores[key]) for key in keys))
    means = run.metrics()
    table.add_row("mean", "", "", *(_number(means["m" + key if key.startswith("AP") else key])
                                    for key in keys), style="bold")
    return table


def write_chart(runs: Sequence[Run], ks: Sequence[int], path: Path) -> Path:
    """Grouped bars: each metric@k per pipeline (left), latency p50/p95 (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = metric_keys(ks)
    width = 0.8 / max(len(runs), 1)
    figure, (quality, speed) = plt.subplots(
        1, 2, figsize=(4 + 0.9 * len(keys), 4.5), gridspec_kw={"width_ratios": [len(keys), 2]}
    )
    for index, run in enumerate(runs):
        metrics, latency = run.metrics(), run.latency_ms()
        offset = (index - (len(runs) - 1) / 2) * width
        quality.bar(np.arange(len(keys)) + offset, [metrics[key] or 0 for key in keys], width,
                    label=run.pipeline)
        speed.bar(np.arange(2) + offset, [latency["p50"] or 0, latency["p95"] or 0], width)
    quality.set_xticks(np.arange(len(keys)), keys, rotation=45, ha="right")
    quality.set_ylim(0, 1.25)  # room above the bars for the legend
    quality.set_yticks(np.linspace(0, 1, 6))
    quality.set_ylabel("score")
    quality.set_title("retrieval quality")
    quality.legend(loc="upper center", ncol=min(len(runs), 3), fontsize="small")
    speed.set_xticks(np.arange(2), ["p50", "p95"])
    speed.set_ylabel("ms per search")
    speed.set_title("latency")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_json(runs: Sequence[Run], context: dict[str, Any], path: Path) -> Path:
    """``context`` (folder, url, ks, ...), the definitions, and every run in full."""
    text = any(isinstance(run, TextRun) for run in runs)
    body = {**context, "definitions": TEXT_DEFINITIONS if text else DEFINITIONS,
            "pipelines": [run.to_json() for run in runs]}
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path
