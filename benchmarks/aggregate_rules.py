"""M5 monthly's aggregate Base rules, screened quickly (a script, not a test): per-window RMSSE of the Base alone at
total / region / warehouse (14 series: no reconciliation, no SKUs), each window's combination weights fitted only on
the windows before it, over plan_rules' cached candidates:

    python -m benchmarks.aggregate_rules [--cache DIR]     # DIR as for `python -m benchmarks.plan_rules m5-monthly`

Ratios are to the best single model in hindsight over the last 6 windows, as plan_rules prints them. It screens rules
in seconds where the full nested pass takes 15-45 minutes; a rule kept is then measured with plan_rules on all three
jobs (docs/benchmarks.md, "Nested scores (stop 28)").
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from forecasting.evaluate.plan import clearly_better

MODELS = ["AutoETS", "AutoTheta", "AutoARIMA", "SeasonalNaive", "LightGBM"]
LEVELS = ["total", "region", "warehouse"]
SALES = Path(__file__).resolve().parents[1] / "data" / "m5" / "m5_monthly_sales.parquet"
Rule = Callable[[dict[str, np.ndarray], int], dict[str, float]]


def history() -> pl.DataFrame:
    """The aggregate series' monthly sales, the job's incomplete first and last months dropped."""
    s = pl.read_parquet(SALES).filter(pl.col("month").is_between(pl.date(2011, 2, 1), pl.date(2016, 3, 1)))
    ids = [pl.lit("total"), "total/" + pl.col("state_id"), "total/" + pl.col("state_id") + "/" + pl.col("store_id")]
    keys = [[], ["state_id"], ["state_id", "store_id"]]
    parts = [
        s.group_by(*k, "month").agg(pl.col("sales").sum()).with_columns(unique_id=i)
        for k, i in zip(keys, ids, strict=True)
    ]
    return pl.concat([p.select("unique_id", ds="month", y=pl.col("sales").cast(pl.Float64)) for p in parts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "forecasting-plan-rules")
    cache = parser.parse_args().cache
    fc = (
        pl.scan_parquet(cache / "m5-monthly-forecasts.parquet")
        .filter(~pl.col("unique_id").str.contains(r"_\d+_\d+"))
        .select("unique_id", "ds", "cutoff", "y", *MODELS)
        .collect()
        .with_columns(level=pl.col("unique_id").str.count_matches("/").replace_strict([0, 1, 2], LEVELS))
    )
    Y = history()
    cutoffs = sorted(fc["cutoff"].unique().to_list())
    scale = pl.concat(
        [
            Y.filter(pl.col("ds") <= c)
            .sort("ds")
            .group_by("unique_id")
            .agg((pl.col("y").diff() ** 2).mean().alias("scale"))
            .with_columns(cutoff=pl.lit(c))
            for c in cutoffs
        ]
    )

    def score(frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """frame with column p -> level -> per-window mean RMSSE (M5's one-step naive scale)."""
        per = (
            frame.group_by("unique_id", "cutoff", "level")
            .agg(((pl.col("y") - pl.col("p")) ** 2).mean().alias("mse"))
            .join(scale, on=["unique_id", "cutoff"])
            .with_columns(r=(pl.col("mse") / pl.col("scale")).sqrt())
            .group_by("level", "cutoff")
            .agg(pl.col("r").mean())
            .sort("cutoff")
        )
        return {lv: per.filter(pl.col("level") == lv)["r"].to_numpy() for lv in LEVELS}

    single = {m: score(fc.with_columns(p=pl.col(m))) for m in MODELS}

    def combined(rule: Rule) -> dict[str, np.ndarray]:
        out: dict[str, list[float]] = {lv: [] for lv in LEVELS}
        for k, c in enumerate(cutoffs):  # step = horizon: every earlier window ended by this cutoff
            p = pl.lit(None, dtype=pl.Float64)
            for lv in LEVELS:
                weights = rule({m: single[m][lv][:k] for m in MODELS}, k)
                p = pl.when(pl.col("level") == lv).then(sum(w * pl.col(m) for m, w in weights.items())).otherwise(p)
            window = score(fc.filter(pl.col("cutoff") == c).with_columns(p=p))
            for lv in LEVELS:
                out[lv].append(float(window[lv][0]))
        return {lv: np.array(v) for lv, v in out.items()}

    def equal(per: dict[str, np.ndarray], n: int) -> dict[str, float]:
        return dict.fromkeys(MODELS, 1 / len(MODELS))

    def trimmed(width: float) -> Rule:
        def rule(per: dict[str, np.ndarray], n: int) -> dict[str, float]:
            best = min(per, key=lambda m: per[m].mean()) if n else MODELS[0]
            kept = [m for m in MODELS if not _worse(per[best], per[m], width)]
            return dict.fromkeys(kept, 1 / len(kept))

        return rule

    def inverse(power: int, prior: float = 0.0) -> Rule:
        def rule(per: dict[str, np.ndarray], n: int) -> dict[str, float]:
            if not n:
                return equal(per, n)
            inv = {m: 1 / max(per[m].mean(), 1e-12) ** power for m in MODELS}
            shrink = prior / (prior + n)  # toward equal weights, less with more windows
            return {m: shrink / len(MODELS) + (1 - shrink) * inv[m] / sum(inv.values()) for m in MODELS}

        return rule

    def top(k: int) -> Rule:
        def rule(per: dict[str, np.ndarray], n: int) -> dict[str, float]:
            return dict.fromkeys(sorted(MODELS, key=lambda m: per[m].mean())[:k], 1 / k) if n else equal(per, n)

        return rule

    rules = {
        "Mean (the stop-27 anchor)": equal,
        "Trimmed, 1 s.e.": trimmed(1.0),
        "Trimmed, 0 s.e.": trimmed(0.0),
        "Trimmed, 2 s.e.": trimmed(2.0),
        "inverse-MSE (Weighted)": inverse(2),
        "inverse mean score": inverse(1),
        "inverse-MSE shrunk to equal, prior 3 windows": inverse(2, 3.0),
        "Top2": top(2),
        "Top3": top(3),
    }
    # The whole choice, as plan.choose_base makes it: an anchor, replaced by a candidate clearly better over the
    # earlier windows (the lowest of those); the fitted combinations scored with their own earlier-window weights.
    median = score(fc.with_columns(p=pl.concat_list(MODELS).list.median()))
    pool = single | {"Median": median} | {n: combined(rules[k]) for n, k in
            (("Mean", "Mean (the stop-27 anchor)"), ("Weighted", "inverse-MSE (Weighted)"), ("Top2", "Top2"),
             ("Trimmed", "Trimmed, 1 s.e."))}  # fmt: skip

    def choice(anchor: str, candidates: list[str]) -> dict[str, np.ndarray]:
        out = {}
        for lv in LEVELS:
            picked = []
            for k in range(len(cutoffs)):
                better = [
                    m for m in candidates if m != anchor and clearly_better(pool[m][lv][:k], pool[anchor][lv][:k])
                ]
                pick = min(better, key=lambda m: pool[m][lv][:k].mean()) if better else anchor
                picked.append(pool[pick][lv][k])
            out[lv] = np.array(picked)
        return out

    everything = [*MODELS, "Mean", "Median", "Weighted", "Top2", "Trimmed"]
    choices = {
        "choice: Mean anchor, without Trimmed (stop 27)": choice("Mean", everything[:-1]),
        "choice: Mean anchor, Trimmed a candidate": choice("Mean", everything),
        "choice: Trimmed anchor": choice("Trimmed", everything),
    }
    last = slice(len(cutoffs) - 6, None)
    best = {lv: min(single[m][lv][last].mean() for m in MODELS) for lv in LEVELS}
    rows = [{"rule": m, **{lv: single[m][lv][last].mean() / best[lv] for lv in LEVELS}} for m in MODELS]
    rows += [{"rule": name, **{lv: s[lv][last].mean() / best[lv] for lv in LEVELS}} for name, s in
             ((name, combined(rule)) for name, rule in rules.items())]  # fmt: skip
    rows += [{"rule": name, **{lv: s[lv][last].mean() / best[lv] for lv in LEVELS}} for name, s in choices.items()]
    with pl.Config(tbl_rows=30, fmt_str_lengths=50, float_precision=3):
        print("M5 monthly Base (no reconciliation) / best single in hindsight, last 6 of 11 windows")
        print(pl.DataFrame(rows))


def _worse(best: np.ndarray, other: np.ndarray, width: float) -> bool:
    """`best` clearly better than `other` by `width` standard errors (1: plan.clearly_better)."""
    if width == 1.0:
        return clearly_better(best, other)
    d = best - other
    return len(d) >= 2 and bool(d.mean() + width * d.std(ddof=1) / math.sqrt(len(d)) < 0)


if __name__ == "__main__":
    main()
