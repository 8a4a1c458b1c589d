"""Version detection on real Debian daemons in the namespace lab.

With nmap's probe file, pyscan must give nmap's own answer (service, tunnel, product,
version) on every daemon port; with pyscan's built-in file alone, the right service and
product. The truth comes from the installed packages (pyscan.testing.daemons) and is itself
checked against nmap -sV in tests/lab/test_daemons.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import pyscan
from pyscan.service import find_nmap_file
from pyscan.testing.daemons import DaemonSet, ServiceTruth, daemon_lab_config, start_daemons
from pyscan.testing.netlab import Lab, unavailable_reason

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def daemons() -> Iterator[DaemonSet]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with Lab(daemon_lab_config()) as lab:
        ds = start_daemons(lab)
        if not ds.truth:
            ds.stop()
            pytest.skip("no daemon package installed (scripts/install-daemons.sh)")
        with ds:
            yield ds


def _scan(ds: DaemonSet, probe_file: str | None, *, use_builtin: bool) -> pyscan.ScanReport:
    spec = ",".join(f"{'T' if proto == 'tcp' else 'U'}:{port}" for proto, port in sorted(ds.truth))
    kinds = ("syn", "udp") if any(p == "udp" for p, _ in ds.truth) else ("syn",)
    version = pyscan.VersionOptions(intensity=7, probe_file=probe_file)

    async def go() -> pyscan.ScanReport:
        if use_builtin:
            import os  # noqa: PLC0415

            os.environ["PYSCAN_NO_NMAP_DATA"] = "1"
        try:
            return await pyscan.scan(
                ds.address, spec, scan_types=kinds, skip_discovery=True, version=version,
                timing=4,
            )  # fmt: skip
        finally:
            if use_builtin:
                os.environ.pop("PYSCAN_NO_NMAP_DATA", None)

    with ds.lab.scanner_netns():
        return asyncio.run(go())


def _name(truth: ServiceTruth) -> str:
    return truth.name


def _got(report: pyscan.ScanReport) -> dict[tuple[str, int], pyscan.PortResult]:
    return {(p.protocol, p.port): p for p in report.all_ports()}


@pytest.mark.nmap
def test_with_nmaps_database_every_port_equals_nmaps_answer(daemons: DaemonSet) -> None:
    nmap_db = find_nmap_file("nmap-service-probes")
    if nmap_db is None:
        pytest.skip("nmap's nmap-service-probes is not installed (Debian package nmap)")
    got = _got(_scan(daemons, str(nmap_db), use_builtin=False))
    wrong = {}
    for key, truth in daemons.truth.items():
        port = got[key]
        svc = port.service
        name = None if svc is None else ("ssl/" if svc.tunnel else "") + svc.name
        # nmap's snmp-info script rewrites the SNMP product; the probe file alone gives this:
        product = truth.probe_product if truth.nse else truth.product
        mine = (port.state.value, name, svc and svc.product, svc and svc.version)
        want = ("open", _name(truth), product, truth.version)
        if mine != want:
            wrong[key] = (mine, want)
    assert not wrong, wrong


def test_with_the_builtin_database_service_and_product_are_right(daemons: DaemonSet) -> None:
    got = _got(_scan(daemons, None, use_builtin=True))
    wrong = {}
    for key, truth in daemons.truth.items():
        port = got[key]
        svc = port.service
        name = None if svc is None else ("ssl/" if svc.tunnel else "") + svc.name
        product = truth.probe_product if truth.nse else truth.product
        if (port.state.value, name, svc and svc.product) != ("open", _name(truth), product):
            wrong[key] = ((port.state.value, name, svc and svc.product), (_name(truth), product))
    assert not wrong, wrong
