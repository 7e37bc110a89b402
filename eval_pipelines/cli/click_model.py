"""`eval-pipelines click-model show`: the position-bias curve fitted from the current logs, with its
evidence, and plainly whether the correction is available."""

from __future__ import annotations

import argparse
from typing import Any

from eval_pipelines.cli.output import format_table, print_json
from eval_pipelines.core.click_model import ClickModel, load_or_fit
from eval_pipelines.core.paths import DataPaths


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("click-model", help="the position-bias model fitted from the logs")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    show = verbs.add_parser(
        "show",
        help="fit (or load) the current log snapshot's click model and print its curve and evidence",
    )
    show.add_argument("--json", action="store_true", help="print the model as JSON")
    show.set_defaults(handler=run_show)


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def human(model: ClickModel) -> str:
    fit = model.fit
    rows: list[list[Any]] = [
        [
            r["position"],
            _number(r["propensity"]),
            _interval(r["ci_low"], r["ci_high"]),
            f"{r['impressions']:,}",
            f"{r['clicks']:,}",
            f"{r['varied_impressions']:,}",
            f"{r['randomized_impressions']:,}",
            _number(r["randomized_propensity"]),
            _interval(r["randomized_ci_low"], r["randomized_ci_high"]),
        ]
        for r in model.propensities.to_pylist()
    ]
    header = [
        "position",
        "propensity",
        "95% CI",
        "impressions",
        "clicks",
        "varied",
        "randomized",
        "randomized estimate",
        "randomized 95% CI",
    ]
    lines = [
        f"click model {model.model_id} (position-based; propensity relative to position 1)",
        f"searches {fit['searches']:,} ({fit['randomized_searches']:,} randomized), "
        f"(query, document) pairs {fit['pairs']:,} ({fit['varied_pairs']:,} served at several positions); "
        f"EM then Fisher scoring, {fit['iterations']} steps, converged {fit['converged']}; "
        f"{fit['bootstrap_draws']} bootstrap draws over queries, seed {fit['seed']}",
        "",
        format_table(header, rows),
        "",
    ]
    if model.available:
        lines.append(
            f"correction available: positions 1..{fit['depth']} meet the rule "
            f"({fit['availability_rule']}); deeper positions use position {fit['depth']}'s value"
        )
    else:
        lines.append(f"correction unavailable: {model.reason}")
        lines.append(f"rule: {fit['availability_rule']}")
    disagreeing = fit["agreement"]["disagreeing_positions"]
    if disagreeing:
        lines.append(
            "warning: the randomized-traffic estimate disagrees with the fit at positions "
            + ", ".join(str(p) for p in disagreeing)
        )
    return "\n".join(lines)


def run_show(args: argparse.Namespace, paths: DataPaths) -> int:
    model = load_or_fit(paths)
    if args.json:
        print_json(model.to_dict())
    else:
        print(human(model))
    return 0
