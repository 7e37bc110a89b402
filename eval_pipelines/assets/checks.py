"""A core Finding as Dagster's asset check result: one translation for every asset's checks."""

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from eval_pipelines.core.findings import Finding


def check_result(name: str, finding: Finding, severity: AssetCheckSeverity) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        passed=finding.passed,
        severity=severity,
        description=finding.description,
        metadata={
            key: MetadataValue.json(value) if isinstance(value, dict | list) else value
            for key, value in finding.metadata.items()
        },
    )
