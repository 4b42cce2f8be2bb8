"""The standard analyses, in the order the engine runs them.

Each is `find_…(ctx: AnalysisContext) -> AnalysisResult` in a module named for what it finds;
it reads only the working tables on `ctx.con` (see `common.py`), makes no model call and no
other I/O. Order matters only for reading the output: candidates are ranked afterwards, and
findings keep this order.
"""

from __future__ import annotations

from collections.abc import Callable

from correlate.analyses import (
    attribute_contrast,
    clock_skew_hosts,
    critical_path_shift,
    deploys,
    error_origin,
    latency_attribution,
    lock_timing,
    log_templates,
    n_plus_one,
    network_gaps,
    onset,
    queue_backlog,
    retry_storms,
    service_graph,
    structure_change,
    timeout_cascade,
)
from correlate.analyses.common import AnalysisContext, AnalysisResult

__all__ = ["STANDARD_ANALYSES", "Analysis"]

Analysis = tuple[str, Callable[[AnalysisContext], AnalysisResult]]

STANDARD_ANALYSES: tuple[Analysis, ...] = (
    (onset.NAME, onset.find_onset),  # only without a baseline: where to start one
    (service_graph.NAME, service_graph.find_service_graph_changes),
    (deploys.NAME, deploys.find_deploys),
    (error_origin.NAME, error_origin.find_error_origins),
    (latency_attribution.NAME, latency_attribution.find_latency_regressions),
    (network_gaps.NAME, network_gaps.find_network_delays),
    (n_plus_one.NAME, n_plus_one.find_n_plus_one),
    (retry_storms.NAME, retry_storms.find_retry_storms),
    (timeout_cascade.NAME, timeout_cascade.find_timeout_cascades),
    (structure_change.NAME, structure_change.find_structure_changes),
    (queue_backlog.NAME, queue_backlog.find_queue_backlogs),
    (lock_timing.NAME, lock_timing.find_lease_expiries),
    (clock_skew_hosts.NAME, clock_skew_hosts.find_skewed_hosts),
    (critical_path_shift.NAME, critical_path_shift.find_critical_path_shifts),
    (attribute_contrast.NAME, attribute_contrast.find_attribute_contrasts),
    (log_templates.NAME, log_templates.find_log_changes),
)
