"""The comparison in words: a plain-text table and the one-sentence verdict of how the
network compares with the random forest."""

from __future__ import annotations

from collections.abc import Mapping

from stoichnet.evaluate.metrics import Estimate


def format_table(rows: Mapping[str, Mapping[str, object]], columns: list[str]) -> str:
    """Plain-text table, one row per model.

    Args:
        rows: model name -> {column: value}; an :class:`Estimate` prints as
            ``value [low, high]``, a float with 4 significant digits, None as ``-``.
        columns: the column names, in order.
    """

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, Estimate):
            return str(value)
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    header = ["model", *columns]
    body = [[name, *(cell(values.get(c)) for c in columns)] for name, values in rows.items()]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(text.ljust(w) for text, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(
    network: str,
    net: Estimate,
    forest: str,
    rf: Estimate,
    metric: str,
    lower_is_better: bool,
    unit: str = "",
    failure: str | None = None,
) -> str:
    """One sentence: how much the network improves on the forest on ``metric``, in
    absolute and relative terms, and whether the two confidence intervals overlap.

    ``failure``: why the network did not learn (``str`` of a
    :class:`~stoichnet.evaluate.learning.LearningFailure`); the sentence then says so
    and compares nothing, since the network's number is no result.
    """
    unit = f" {unit}" if unit else ""
    if failure is not None:
        return (f"The network ({network}) is no result: {failure}. Its test {metric} "
                f"{net.value:.4g}{unit} is not compared with the forest's ({forest}, "
                f"{rf.value:.4g}{unit}).")
    diff = rf.value - net.value if lower_is_better else net.value - rf.value
    relative = abs(diff) / abs(rf.value) * 100 if rf.value else float("nan")
    if diff > 0:
        how = f"improves on the forest ({forest}) by {abs(diff):.4g}{unit} in {metric}"
    elif diff < 0:
        how = f"is worse than the forest ({forest}) by {abs(diff):.4g}{unit} in {metric}"
    else:
        how = f"ties with the forest ({forest}) in {metric}"
    better = "better" if diff > 0 else "worse"
    rel = f"{relative:.1f}% {better}" if diff else "0%"
    overlap = "overlap" if net.overlaps(rf) else "do not overlap"
    pct = f"{round(net.confidence * 100):d}%"
    return (
        f"The network ({network}) {how} ({net.value:.4g} vs {rf.value:.4g}{unit}, {rel}); "
        f"their {pct} confidence intervals {overlap}."
    )
