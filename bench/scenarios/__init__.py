"""Incident scenarios recorded with the real OpenTelemetry SDK, with ground truth.

`SCENARIOS` maps each name to its `Shop` subclass; `generate.write_scenario` runs one.
"""

from __future__ import annotations

from bench.scenarios.code_path_change import CodePathChange
from bench.scenarios.cpu_saturation import CpuSaturation
from bench.scenarios.dependency_failure import DependencyFailure
from bench.scenarios.deploy_n_plus_one import DeployNPlusOne
from bench.scenarios.healthy import Healthy
from bench.scenarios.lock_clock_skew import LockClockSkew
from bench.scenarios.network_delay import NetworkDelay
from bench.scenarios.queue_redelivery import QueueRedelivery
from bench.scenarios.retry_storm import RetryStorm
from bench.scenarios.shop import Shop

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
