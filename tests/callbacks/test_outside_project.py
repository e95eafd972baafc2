"""The callbacks copied into a project outside this repository, on 1 process and 2-process CPU DDP.

Each case runs ``tests/callbacks/outside_project/fit_with_callbacks.py`` in a fresh folder that
holds nothing but that script and a copy of ``callbacks/``: an uninterrupted run, and a run that
crashes mid-epoch and resumes from its last checkpoint. Both must give torch's OneCycleLR values,
inverse momentum (Adam's ``betas[0]``) and the linear teacher-forcing decay at every optimizer
step, on every rank.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.toy import torch_one_cycle_reference

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train

SCRIPT = REPO_ROOT / "tests" / "callbacks" / "outside_project" / "fit_with_callbacks.py"
ONE_CYCLE = {"max_lr": [0.05, 0.01], "pct_start": 0.4, "three_phase": False}
CASES = [
    # namespace, devices, samples, optimizer steps: 3 epochs x ceil(batches per rank / 2)
    pytest.param("lightning.pytorch", 1, 75, 3 * 10, id="lightning-1proc"),
    pytest.param("pytorch_lightning", 1, 75, 3 * 10, id="pytorch_lightning-1proc"),
    # 75 samples -> 38 per rank (one padded) -> 10 batches of 4 -> 5 steps per epoch.
    pytest.param(
        "pytorch_lightning", 2, 75, 3 * 5, id="pytorch_lightning-ddp2", marks=pytest.mark.ddp
    ),
    pytest.param("lightning.pytorch", 2, 75, 3 * 5, id="lightning-ddp2", marks=pytest.mark.ddp),
]


def start_project(
    project: Path, out: Path, namespace: str, devices: int, *extra: str
) -> tuple[list[str], subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(project), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "fit_with_callbacks.py", "--out", str(out), "--namespace", namespace]
    cmd += ["--devices", str(devices), *extra]
    proc = subprocess.Popen(
        cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return cmd, proc


def finish_project(started: tuple[list[str], subprocess.Popen[str]]) -> None:
    cmd, proc = started
    stdout, stderr = proc.communicate(timeout=600)
    crashed = "--crash-at" in cmd
    if (proc.returncode != 0) != crashed or (crashed and "simulated crash" not in stderr):
        raise AssertionError(f"{cmd} exited {proc.returncode}:\n{stdout}\n{stderr}")


def run_project(project: Path, out: Path, namespace: str, devices: int, *extra: str) -> None:
    finish_project(start_project(project, out, namespace, devices, *extra))


def read_ranks(out: Path, devices: int) -> list[dict]:
    records = [json.loads((out / f"rank{r}.json").read_text()) for r in range(devices)]
    for rank, record in enumerate(records):
        assert record["rank"] == rank and record["world_size"] == devices
    return records


@pytest.mark.parametrize(("namespace", "devices", "samples", "total"), CASES)
def test_outside_project_schedules_with_crash_and_resume(
    tmp_path: Path, namespace: str, devices: int, samples: int, total: int
) -> None:
    project = tmp_path / "project"
    shutil.copytree(
        REPO_ROOT / "callbacks", project / "callbacks", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(SCRIPT, project)

    # The uninterrupted run and the run that crashes are independent: both at once (most of each
    # is a new interpreter importing Lightning, one core's work).
    crash_step = total // 3 + 2  # mid-epoch of the second epoch
    full_run = start_project(project, tmp_path / "full", namespace, devices)
    crash_run = start_project(
        project, tmp_path / "crash", namespace, devices, "--crash-at", str(crash_step)
    )
    try:
        finish_project(full_run)
        finish_project(crash_run)
    finally:
        for _, proc in (full_run, crash_run):
            if proc.poll() is None:  # one failed or timed out: no process outlives the test
                proc.kill()
                proc.communicate()
    full = read_ranks(tmp_path / "full", devices)
    assert Path(full[0]["callbacks_file"]).is_relative_to(project), "imports the copied package"

    reference = torch_one_cycle_reference(total, 2, "adam", **ONE_CYCLE)
    tf_steps = 2 * total // 3  # TeacherForcingScheduler(epochs=2) over 3 epochs
    for record in full:
        assert record["total_steps"] == total == record["global_step"]
        assert sorted(map(int, record["steps"])) == list(range(total))
        for step, groups in record["steps"].items():
            for (lr, mom), (ref_lr, ref_mom) in zip(groups, reference[int(step)], strict=True):
                assert lr == pytest.approx(ref_lr, rel=1e-9, abs=1e-12)
                assert mom == pytest.approx(ref_mom, rel=1e-9, abs=1e-12)
        for step, values in record["train_pr_force"].items():
            expected = 1.0 - min(1.0, int(step) / tf_steps)
            assert values == pytest.approx([expected] * len(values), abs=1e-12)
        assert record["eval_pr_force"] and set(record["eval_pr_force"]) == {0.0}
    # Every rank sees the same schedule.
    for other in full[1:]:
        assert other["steps"] == full[0]["steps"]
        assert other["train_pr_force"] == full[0]["train_pr_force"]

    checkpoint = tmp_path / "crash" / "ckpt" / f"step={crash_step}.ckpt"
    assert checkpoint.exists()
    run_project(project, tmp_path / "resumed", namespace, devices, "--resume", str(checkpoint))
    resumed = read_ranks(tmp_path / "resumed", devices)
    for before, after in zip(full, resumed, strict=True):
        assert after["global_step"] == total
        assert sorted(map(int, after["steps"])) == list(range(crash_step, total))
        for step, groups in after["steps"].items():
            assert groups == before["steps"][step], f"rank {after['rank']} step {step}"
        for step, values in after["train_pr_force"].items():
            assert set(values) == set(before["train_pr_force"][step])
