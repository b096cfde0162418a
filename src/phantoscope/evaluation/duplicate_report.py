"""`phantoscope eval --duplicates` results as terminal tables (from the run's JSON)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

DEFINITIONS = {
    "copies": "a pair within one copy group of duplicates.json is positive; every other "
    "pair is negative, near-shots of the same scene included",
    "similar": "a pair within one copy group or one scene group is positive",
    "pairs": "each pair judged on its own (candidate by hash or encoder, then aligned)",
    "grouped": "pairs that share a group once the judged pairs are joined: copies by "
    "linkage (joined when at least as many judged pairs between the two groups are copies "
    "as are not), similar shots by union-find",
    "same_bytes_only": "copies by SHA-256 alone",
    "hash_alone": "copies by perceptual-hash distance alone (nearest of 8 orientations)",
    "encoder_alone": "copies by encoder cosine alone",
    "curve_worst_block": "copies at other bounds on the worst block's residual",
}


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _row(table: Table, label: str, scores: dict[str, Any]) -> None:
    table.add_row(label, _number(scores["precision"]), _number(scores["recall"]),
                  str(scores["true_positives"]), str(scores["false_positives"]),
                  str(scores["false_negatives"]))


def _scores_table(title: str, first: str) -> Table:
    table = Table(title=title)
    table.add_column(first, style="bold")
    for name in ("precision", "recall", "TP", "FP", "FN"):
        table.add_column(name, justify="right")
    return table


def summary_table(body: dict[str, Any]) -> Table:
    """Copies and similar shots at the chosen thresholds, pair by pair and as grouped."""
    table = _scores_table(
        f"Duplicates: {body['images']} images, {body['pairs']:,} pairs "
        f"({body['copy_pairs']:,} copy, {body['similar_pairs']:,} similar)", "judged")
    for kind in ("copies", "similar"):
        _row(table, f"{kind}, pairs", body[kind]["pairs"])
        _row(table, f"{kind}, grouped", body[kind]["grouped"])
    _row(table, "copies by SHA-256 alone", body["copies"]["same_bytes_only"])
    return table


def similar_curve_table(body: dict[str, Any]) -> Table:
    """Similar shots over the encoder-cosine threshold (copies always count)."""
    table = _scores_table("Similar shots by encoder cosine (the chosen point: "
                          f"{body['thresholds']['similar_min_cosine']})", "min cosine")
    for point in body["similar"]["curve"]:
        _row(table, f"{point['min_cosine']:.2f}", point)
    return table


def copy_alternatives_table(body: dict[str, Any]) -> Table:
    """Why the copy decision aligns thumbnails: each cheap descriptor alone, at its best
    point with precision 0.98 or more, and the alignment at other worst-block bounds."""
    table = _scores_table("Copies: other descriptors alone, and other bounds on the "
                          "alignment's worst block", "decision")
    copies = body["copies"]
    for name, key, label in (("hash_alone", "max_bits", "hash <= {} bits"),
                             ("encoder_alone", "min_cosine", "cosine >= {}")):
        precise = [point for point in copies[name] if (point["precision"] or 0) >= 0.98]
        best = max(precise, key=lambda point: point["recall"] or 0, default=None)
        if best is not None:
            _row(table, label.format(best[key]), best)
    for point in copies["curve_worst_block"]:
        _row(table, f"aligned, worst block <= {point['max_worst_block']}", point)
    return table


def edit_table(body: dict[str, Any]) -> Table:
    """Recall of copy pairs by the edit (file name) of either image."""
    table = Table(title="Copies found, by edit")
    table.add_column("edit", style="bold")
    table.add_column("recall", justify="right")
    table.add_column("pairs", justify="right")
    for edit, found in body["copies"]["by_edit"].items():
        table.add_row(edit, _number(found["recall"]), str(found["pairs"]))
    return table
