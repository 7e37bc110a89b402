"""Position bias estimated from the logs: a position-based click model per log snapshot, and what
users told us about each (query, document) pair once position is accounted for."""

from eval_pipelines.core.click_model.evidence import query_document_evidence
from eval_pipelines.core.click_model.fitting import fit_click_model, load_or_fit
from eval_pipelines.core.click_model.model import ClickModel
from eval_pipelines.core.click_model.observations import CLICK_TYPES
from eval_pipelines.core.click_model.propensities import AVAILABILITY_RULE, MAX_RELATIVE_SE
from eval_pipelines.core.click_model.store import log_snapshot_id

__all__ = [
    "AVAILABILITY_RULE",
    "CLICK_TYPES",
    "MAX_RELATIVE_SE",
    "ClickModel",
    "fit_click_model",
    "load_or_fit",
    "log_snapshot_id",
    "query_document_evidence",
]
