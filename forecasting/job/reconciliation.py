"""How a job reconciles: the method names (`MinTrace_<variant>`, `MiddleOut_<upper>[@<level>]`) and their settings."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, field_validator, model_validator

from forecasting.job.common import IDENTIFIER, Strict

MinTraceVariant = Literal["ols", "wls_struct", "wls_var", "mint_shrink"]
UpperReconciler = Literal["BottomUp", MinTraceVariant]
# MinTrace variants whose weights are estimated from the calibration errors: their points move with the calibration,
# and they need every period of those errors (the others read only the periods the conformal intervals use).
FROM_ERRORS = frozenset({"wls_var", "mint_shrink"})
MIDDLE_OUT = "MiddleOut_"
MIDDLE_AT = "@"  # MiddleOut_<upper>@<level>: middle-out from that level instead of `middle_level`
PLAIN_METHODS = (
    "BottomUp",
    "MinTrace",
    *(f"MinTrace_{variant}" for variant in get_args(MinTraceVariant)),
    "MiddleOut",
    *(f"{MIDDLE_OUT}{upper}" for upper in get_args(UpperReconciler)),
)


def _known_method(value: str) -> str:
    name, at, level = value.partition(MIDDLE_AT)
    if name not in PLAIN_METHODS or (at and not (name.startswith("MiddleOut") and IDENTIFIER.match(level))):
        raise ValueError(
            f"unknown reconciliation method {value!r}: one of {', '.join(PLAIN_METHODS)}, or a MiddleOut one with "
            f"{MIDDLE_AT}<level> (e.g. MiddleOut_BottomUp{MIDDLE_AT}warehouse)"
        )
    return value


ReconcileMethod = Annotated[str, AfterValidator(_known_method)]


def middle_out_parts(label: str) -> tuple[str, str | None]:
    """`MiddleOut_<upper>[@<level>]` -> (upper, level or None: the job's `middle_level`)."""
    upper, _, level = label.removeprefix(MIDDLE_OUT).partition(MIDDLE_AT)
    return upper, level or None


class ReconcileSpec(Strict):
    """Reconciliation methods; `MinTrace` means MinTrace with `mintrace_method`, `MinTrace_<m>` names one outright
    (several MinTrace variants can run side by side, as the tourism benchmark does). `MiddleOut` likewise means
    middle-out with `middle_out_upper`, `MiddleOut_<u>` names one outright, and `MiddleOut_<u>@<level>` middle-out
    from that level instead of `middle_level`: so one backtest scores several middle levels and `choose_from_backtest`
    (or the benchmark's rule) chooses among them too."""

    methods: list[ReconcileMethod] = Field(
        default_factory=lambda: ["BottomUp", "MinTrace"],
        description="the reconciliations run (and backtested): BottomUp, MinTrace, MinTrace_<variant>, MiddleOut, "
        "MiddleOut_<upper>[@<level>]; a method the library refuses falls back (QP -> clip; wls_var or mint_shrink -> "
        "wls_struct) and says so",
    )
    mintrace_method: MinTraceVariant = Field(
        "wls_struct",
        description="wls_var and mint_shrink estimate error variances from the calibration errors (in-sample fits or "
        "backtest errors, see `calibration`); mint_shrink needs a dense n x n covariance (small hierarchies only)",
    )
    middle_level: str | None = Field(
        None,
        description="MiddleOut: the level the upper part is reconciled down to and the lower levels are split from "
        "by forecast proportions (default: the level above the bottom; the top level is top-down by forecast "
        "proportions). A method named MiddleOut_<upper>@<level> uses that level instead",
    )
    middle_out_upper: UpperReconciler = Field(
        "mint_shrink",
        description="MiddleOut (and MiddleOut@<level>): how the levels down to the middle level are reconciled "
        "among themselves (BottomUp from the middle level, or MinTrace with this variant; a dense covariance of those "
        "few series only)",
    )
    nonnegative: bool | Literal["qp", "clip"] = Field(
        True,
        description="non-negative reconciled forecasts. `qp` (or true): the optimal non-negative coherent forecast, "
        "one quadratic program over every bottom series per horizon step (hierarchicalforecast's Clarabel QP); "
        "`clip`: reconcile unconstrained and, only if some bottom value is negative, clip the bottom level and sum it "
        "up (the library's cheaper heuristic, MinTraceSparse(qp=False)); false: no constraint. `clip` applies to the "
        "sparse MinTrace (ols, wls_struct, wls_var on the whole tree); the dense one (mint_shrink, MiddleOut's upper "
        "part: a few series) has only the QP in the library and keeps it",
    )
    publish: ReconcileMethod = Field("MinTrace", description="the method published when no backtest chooses")
    choose_from_backtest: bool = Field(
        True,
        description="publish the method the job's latest backtest chose (forecasting.evaluate.plan: one whose worst "
        "level relative to Base is clearly better than `publish`'s, else `publish`); `publish` when there is none",
    )
    calibration: Literal["insample", "backtest"] = Field(
        "insample",
        description="errors the reconciled intervals are calibrated on: in-sample fits, or the out-of-sample errors "
        "of the job's latest backtest (falls back to in-sample when there is none covering every series); a "
        "backtest of such a job calibrates each window on the windows before it",
    )

    calibration_window: int | None = Field(
        None,
        ge=2,
        description="calibrate the conformal intervals on only the last N periods in which every series has an "
        "error (default: all of them); for very large jobs, whose in-sample fits are 100M rows at 1M series x 2 "
        "years. Not with wls_var / mint_shrink, which estimate variances from every period",
    )

    @field_validator("nonnegative", mode="before")
    @classmethod
    def _known_nonnegative(cls, value: object) -> object:
        if value not in (True, False, "qp", "clip"):
            raise ValueError(f"reconciliation.nonnegative must be qp, clip, true (= qp) or false; got {value!r}")
        return value

    @property
    def nonnegative_method(self) -> Literal["qp", "clip"] | None:
        """How non-negativity is enforced: qp, clip, or None (not at all)."""
        if self.nonnegative is False:
            return None
        return "qp" if self.nonnegative is True else self.nonnegative

    def middle_level_of(self, label: str, level_names: list[str]) -> str:
        """The middle level of a MiddleOut method: its own `@<level>`, else `middle_level`, by default the level
        above the bottom (`level_names`: the hierarchy's levels, top to bottom)."""
        return middle_out_parts(label)[1] or self.middle_level or level_names[-2]

    @property
    def estimates_from_errors(self) -> bool:
        """Whether a configured method (or a middle-out one's upper part) estimates error variances from the
        calibration errors (wls_var, mint_shrink): then it needs every period of them, not only the periods the
        conformal intervals are calibrated on."""
        labels = [self.label(method) for method in self.methods]
        variants = {label.removeprefix("MinTrace_") for label in labels if label.startswith("MinTrace_")}
        uppers = {middle_out_parts(label)[0] for label in labels if label.startswith(MIDDLE_OUT)}
        return bool((variants | uppers) & FROM_ERRORS)

    def label(self, method: str) -> str:
        """The output name of a method: BottomUp, MinTrace_<variant> or MiddleOut_<upper>[@<level>]."""
        name, at, level = method.partition(MIDDLE_AT)
        if name == "MinTrace":
            return f"MinTrace_{self.mintrace_method}"
        if name == "MiddleOut":
            name = f"{MIDDLE_OUT}{self.middle_out_upper}"
        return name + at + level

    @model_validator(mode="after")
    def _publish_is_run(self) -> ReconcileSpec:
        labels = [self.label(m) for m in self.methods]
        if len(set(labels)) != len(labels):
            raise ValueError(f"methods name the same reconciliation twice: {labels}")
        if self.label(self.publish) not in labels:
            raise ValueError(f"publish method {self.publish!r} is not in methods")
        return self
