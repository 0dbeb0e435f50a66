"""scripts/step.sh, the wrapper of every `make setup` step: says what it does, its usual time and its log, pulses
while the command runs, and on failure shows the log's last lines and the command's exit status."""
import os
import subprocess
from pathlib import Path

STEP = Path(__file__).resolve().parents[1] / "scripts" / "step.sh"


def run(tmp_path: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEARTBEAT_S": "1"}
    return subprocess.run([str(STEP), "compile things", "5 s", str(tmp_path / "logs" / "x.log"), *cmd],
                          capture_output=True, text=True, env=env, timeout=60)


def test_a_long_step_pulses_with_the_log_line(tmp_path: Path) -> None:
    out = run(tmp_path, "sh", "-c", "echo building foo.cpp; sleep 2.5; echo done-all")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"==> compile things (usually 5 s on 2 cores; log: {tmp_path / 'logs' / 'x.log'})"
    beats = [line for line in lines if "still working: compile things" in line]
    assert beats and "(log: building foo.cpp)" in beats[0]
    assert lines[-1].startswith("    done: compile things in ")
    assert (tmp_path / "logs" / "x.log").read_text().splitlines() == ["building foo.cpp", "done-all"]


def test_a_failing_step_shows_its_log_and_exit_status(tmp_path: Path) -> None:
    out = run(tmp_path, "sh", "-c", "echo 'error: gcc failed'; exit 3")
    assert out.returncode == 3
    assert "!!  compile things failed (exit 3)" in out.stdout and "error: gcc failed" in out.stdout
