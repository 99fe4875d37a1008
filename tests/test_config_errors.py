"""Bad configs and a wrong CA give clear errors, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lab import pki
from lab.control import Lab
from tests.helpers import kcockpit


def test_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    result = kcockpit("report", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "config file not found" in result.stderr and "Traceback" not in result.stderr


def test_broken_toml_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[etcd\nendpoints = ")
    result = kcockpit("report", "--config", str(config))
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_config_without_endpoints_names_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[etcd]\nendpoints = []\nca = "a"\ncert = "b"\nkey = "c"\n')
    result = kcockpit("report", "--config", str(config))
    assert result.returncode == 2 and "endpoints" in result.stderr


def test_fleet_keys_are_checked_and_named(tmp_path: Path) -> None:
    cluster = '[clusters.a.etcd]\nendpoints = ["https://10.0.0.1:2379"]\nca = "a"\ncert = "b"\nkey = "c"\n'
    config = tmp_path / "fleet.toml"
    config.write_text(f"{cluster}[clusters.a.fleet]\netcd_intervall = 5\n")
    result = kcockpit("report", "--all", "--config", str(config))
    assert result.returncode == 2 and "[fleet] unknown etcd_intervall" in result.stderr
    config.write_text(f"fleet_reads = 2.5\n{cluster}")
    result = kcockpit("report", "--all", "--config", str(config))
    assert result.returncode == 2 and "fleet_reads must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_ca_is_a_clear_error_not_a_traceback(lab: Lab, tmp_path: Path) -> None:
    shutil.copytree(lab.paths.cockpit, tmp_path / "cockpit")
    (tmp_path / "cockpit" / "etcd-ca.crt").write_bytes(
        pki.cert_pem(pki.issue("some-other-ca", ca=True).cert)
    )
    config = tmp_path / "kcockpit.toml"
    config.write_text(lab.paths.config.read_text())
    result = kcockpit("report", "--config", str(config), "--json", timeout=20)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["etcd"]["error"].startswith("no endpoint answered MemberList")
    assert all(not m["reachable"] and m["error"] for m in report["etcd"]["members"])
    assert {f["id"] for f in report["findings"]} == {"etcd.member-unreachable"}
    human = kcockpit("report", "--config", str(config), timeout=20)
    assert human.returncode == 1 and "no endpoint answered" in human.stdout


def test_missing_client_key_is_reported_not_raised(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "kcockpit.toml"
    config.write_text(lab.paths.config.read_text().replace("cockpit/", f"{tmp_path}/missing/"))
    result = kcockpit("report", "--config", str(config), "--json", timeout=20)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert "cannot read" in json.loads(result.stdout)["etcd"]["error"]
