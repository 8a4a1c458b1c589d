"""The engine's batched paths (bursts through ``route_many``/``receive_many``/
``accept_many``, probes through ``build_batch``) decide exactly what the one-packet paths
decide, on clean and lossy simulated networks, for the SYN and UDP scanners."""

from __future__ import annotations

import pytest

from pyscan._models import PortState
from pyscan.testing.fakenet import CLOSED, DROP, OPEN, FakeHost, FakeNetwork, run_scanner

from ._sim import expected_syn, port_run, target
from .test_syn import PORTS, truth4


def _states(kind: str, net_factory: object, hosts: list, ports: list, paths: str) -> dict:
    net = net_factory()  # type: ignore[operator]
    run = port_run(kind, net, hosts, ports)
    run_scanner(run.scanner, net, run.clock, max_time=3000, paths=paths)  # type: ignore[arg-type]
    return {(r.address, r.port): (r.state, r.reason) for r in run.results}


@pytest.mark.parametrize("loss", [0.0, 0.05])
def test_syn_paths_agree(loss: float) -> None:
    def make() -> FakeNetwork:
        return FakeNetwork(truth4(), delay=0.01, loss=loss, seed=3)

    hosts = [*make().hosts, target(5)]
    engine = _states("syn", make, hosts, PORTS, "engine")
    simple = _states("syn", make, hosts, PORTS, "simple")
    assert len(engine) == len(hosts) * len(PORTS)
    if loss == 0.0:
        assert engine == simple
        net = make()
        for (addr, port), got in engine.items():
            assert got == expected_syn(net, addr, port)
    else:  # loss may make timings differ; the open ports must still all be found
        opened = {k for k, v in engine.items() if v[0] is PortState.OPEN}
        assert opened == {k for k, v in simple.items() if v[0] is PortState.OPEN}


def test_many_hosts_one_burst_each_decided_once() -> None:
    hosts = {target(i): FakeHost(tcp={22: OPEN, 80: CLOSED, 81: DROP}) for i in range(40)}

    def make() -> FakeNetwork:
        return FakeNetwork(dict(hosts), delay=0.005)

    engine = _states("syn", make, list(hosts), [22, 80, 81, 443], "engine")
    simple = _states("syn", make, list(hosts), [22, 80, 81, 443], "simple")
    assert engine == simple
    assert sum(1 for s, _ in engine.values() if s is PortState.OPEN) == 40


def test_udp_paths_agree() -> None:
    def make() -> FakeNetwork:
        return FakeNetwork(truth4(), delay=0.01)

    hosts = list(make().hosts)
    ports = [53, 80, 123, 161, 443, 1001, 1003]
    assert _states("udp", make, hosts, ports, "engine") == _states(
        "udp", make, hosts, ports, "simple"
    )
