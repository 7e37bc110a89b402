"""The click model of the current log snapshot as an asset, with the checks that say whether its
position-bias correction can be trusted."""

from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from eval_pipelines.assets.checks import check_result
from eval_pipelines.assets.inputs import GROUP, interaction_logs
from eval_pipelines.core.click_model import checks, load_or_fit
from eval_pipelines.core.click_model.model import ClickModel
from eval_pipelines.resources import DataDirResource

CHECKS = {
    "fit_converged": (checks.converged, AssetCheckSeverity.ERROR),
    "propensities_non_increasing": (checks.non_increasing, AssetCheckSeverity.WARN),
    "randomized_estimate_agrees": (checks.randomized_agrees, AssetCheckSeverity.WARN),
    "correction_available": (checks.available, AssetCheckSeverity.WARN),
}


def _curve(model: ClickModel) -> str:
    lines = [
        "| position | propensity | 95% CI | impressions | varied | randomized |",
        "|---|---|---|---|---|---|",
    ]
    for r in model.propensities.to_pylist():
        value = "-" if r["propensity"] is None else f"{r['propensity']:.3f}"
        interval = "-" if r["ci_low"] is None else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        lines.append(
            f"| {r['position']} | {value} | {interval} | {r['impressions']} | "
            f"{r['varied_impressions']} | {r['randomized_impressions']} |"
        )
    return "\n".join(lines)


@asset(
    group_name=GROUP,
    deps=[interaction_logs],
    description="Position bias estimated from the logs: a position-based click model (EM, bootstrap "
    "over queries, randomized-traffic estimate) per log snapshot, under <data>/click_models/.",
    check_specs=[AssetCheckSpec(name, asset="click_model") for name in CHECKS],
)
def click_model(context: AssetExecutionContext, data_dir: DataDirResource) -> MaterializeResult:
    model = load_or_fit(data_dir.paths)
    context.log.info(
        f"click model {model.model_id}: available {model.available} ({model.reason or 'ok'})"
    )
    return MaterializeResult(
        metadata={
            "model_id": model.model_id,
            "snapshot_id": model.snapshot_id,
            "available": model.available,
            "reason": model.reason or "",
            "depth": model.depth,
            "searches": model.fit["searches"],
            "randomized_searches": model.fit["randomized_searches"],
            "varied_pairs": model.fit["varied_pairs"],
            "fit_seconds": float(model.fit.get("seconds", 0.0)),
            "curve": MetadataValue.md(_curve(model)),
        },
        check_results=[
            check_result(name, check(model), severity) for name, (check, severity) in CHECKS.items()
        ],
    )
