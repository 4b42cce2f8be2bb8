"""Incident scenarios recorded with the real OpenTelemetry SDK, with ground truth.

`SCENARIOS` maps each name to its `Shop` subclass; `generate.write_scenario` runs one.
"""

from __future__ import annotations

from scenarios.code_path_change import CodePathChange
from scenarios.cpu_saturation import CpuSaturation
from scenarios.dependency_failure import DependencyFailure
from scenarios.deploy_n_plus_one import DeployNPlusOne
from scenarios.healthy import Healthy
from scenarios.lock_clock_skew import LockClockSkew
from scenarios.network_delay import NetworkDelay
from scenarios.queue_redelivery import QueueRedelivery
from scenarios.retry_storm import RetryStorm
from scenarios.shop import Shop

__all__ = ["SCENARIOS"]

SCENARIOS: dict[str, type[Shop]] = {
    cls.name: cls
    for cls in (
        LockClockSkew,
        QueueRedelivery,
        DeployNPlusOne,
        RetryStorm,
        DependencyFailure,
        NetworkDelay,
        CpuSaturation,
        CodePathChange,
        Healthy,
    )
}
