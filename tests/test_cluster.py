"""Past one machine, simulated on one with the real engines. Two nodes: ``torchrun --nnodes 2
--nproc-per-node 1`` (two node agents on a loopback rendezvous) and the way ``srun`` starts tasks
(two processes with the SLURM variables Lightning's ``SLURMEnvironment`` reads), for both models,
with one cache folder for both nodes and with a cache folder per node (node-local disks).

Each run must end with one run directory, one best checkpoint, (with W&B) one W&B run, data
prepared once per node, each rank's share of the batches and of the DeViSE precompute, and the
same weights on every rank. A 2-node checkpoint resumed on 1 process, and a 1-process one on
2 nodes, is refused in one line. And a multirun through Hydra's submitit launcher
(``hydra/launcher=local``, the SLURM launcher's path without a cluster).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lit_devise.synthetic import make_shapes
from tests.conftest import DEVISE_RUN, REPO_ROOT, TINY_RUN
from tests.helpers import run_train

pytestmark = [pytest.mark.train, pytest.mark.ddp]

# The launchers' own variables: a test run from inside one (a CI job on SLURM) must not leak them.
LAUNCH_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
)
DIGEST = ("+callbacks.weight_digest._target_=tests.toy.WeightDigest",)
# W&B (offline) for the one-run check, and CSV beside it for the step counts
WANDB = (
    "logger=wandb",
    "+logger.csv={_target_:pytorch_lightning.loggers.CSVLogger,name:csv,"
    "save_dir:'${paths.output_dir}'}",
)
TWO_NODES = ("trainer=multinode_cpu", "trainer.max_epochs=1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    for name in LAUNCH_VARIABLES:
        env.pop(name, None)
    env["WANDB_MODE"] = "offline"
    return env


def launch(how: str, tmp: Path, run: tuple[str, ...], per_node: list[list[str]]) -> list[str]:
    """Start 2 simulated nodes of one process each (``how``: ``torchrun`` or ``slurm``) running
    ``train.py run + per_node[n]`` in ``tmp``, with one run directory ``tmp/run``; returns each
    node's output (also in ``tmp/node<n>.log``) after both ended with status 0."""
    port = free_port()
    base = [o for o in run if not o.startswith(("trainer=", "trainer.max_epochs"))]
    args = [
        f"hydra.run.dir={tmp / 'run'}",
        *base,
        *TWO_NODES,
        *DIGEST,
        f"+callbacks.weight_digest.folder={tmp / 'digests'}",
    ]
    procs, logs = [], []
    for node, extra in enumerate(per_node):
        env = clean_env()
        if how == "torchrun":
            cmd = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--node-rank",
                str(node),
                "--master-addr",
                "127.0.0.1",
                "--master-port",
                str(port),
            ]
        else:  # what srun gives each task of `sbatch --nodes 2 --ntasks-per-node 1`
            cmd = [sys.executable]
            env |= {
                "SLURM_JOB_ID": "4242",
                "SLURM_JOB_NAME": "lit-train",
                "SLURM_NNODES": "2",
                "SLURM_NTASKS": "2",
                "SLURM_NTASKS_PER_NODE": "1",
                "SLURM_NODELIST": "127.0.0.1",
                "SLURM_PROCID": str(node),
                "SLURM_NODEID": str(node),
                "SLURM_LOCALID": "0",
                "MASTER_PORT": str(port),
            }
        log = tmp / f"node{node}.log"
        logs.append(log)
        with open(log, "w") as out:
            procs.append(
                subprocess.Popen(
                    [*cmd, str(REPO_ROOT / "train.py"), *args, *extra],
                    cwd=tmp,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: the agent and its workers
                )
            )
    try:
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
    outputs = [log.read_text() for log in logs]
    for node, (code, output) in enumerate(zip(codes, outputs, strict=True)):
        assert code == 0, f"node {node}:\n{output[-4000:]}"
    return outputs


def check_one_run(tmp: Path, outputs: list[str], extra_entries: tuple[str, ...] = ()) -> Path:
    """One run directory, one best checkpoint, printed by the first node only, and one W&B
    run (rank 0's); the same weights on both ranks. Returns the best checkpoint."""
    assert sorted(p.name for p in tmp.iterdir()) == sorted(
        ["digests", "node0.log", "node1.log", "run", *extra_entries]
    ), "one run directory"
    best = list((tmp / "run" / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1, best
    assert outputs[0].strip().splitlines()[-1] == f"checkpoint: {best[0]}"
    assert "checkpoint: " not in outputs[1]
    assert len(list((tmp / "run" / "wandb").glob("offline-run-*"))) == 1
    digests = [json.loads((tmp / "digests" / f"weights-rank{r}.json").read_text()) for r in (0, 1)]
    assert digests[0] == digests[1], "every rank ends with the same weights"
    return best[0]


def train_steps(tmp: Path) -> set[str]:
    with open(tmp / "run" / "csv" / "version_0" / "metrics.csv") as f:
        return {r["step"] for r in csv.DictReader(f) if r["train/lr"]}


def token_caches(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and len(p.name) == 16)


SEQ2SEQ = (*TINY_RUN, "data.train.n_pairs=457")  # 411 training pairs: 8 batches of 32 per rank


@pytest.mark.parametrize(
    ("how", "node_caches"), [("torchrun", False), ("slurm", True)], ids=["torchrun", "slurm"]
)
def test_seq2seq_on_two_simulated_nodes(tmp_path: Path, how: str, node_caches: bool) -> None:
    data = tmp_path / "data"
    caches = [tmp_path / f"node{n}_cache" for n in (0, 1)] if node_caches else [data / "cache"] * 2
    outputs = launch(
        how,
        tmp_path,
        (*SEQ2SEQ, f"paths.data_dir={data}", *WANDB),
        [[f"data.cache_dir={cache}"] for cache in caches],
    )
    # the synthetic corpus is generated, not read: with its caches elsewhere, data/ stays empty
    names = ["node0_cache", "node1_cache"] if node_caches else ["data"]
    best = check_one_run(tmp_path, outputs, tuple(names))
    # prepare_data ran once on each node (Lightning's prepare_data_per_node: its data report
    # once in each node's output), into its own cache folder, or, when the folder is shared,
    # by both at once (or the later one found it done): one cache, no half-written folder left.
    for output in outputs:
        assert output.count("train: 411 pairs") == 1, output[-3000:]
    prepared = [
        output.count(f"prepared {cache}/") for output, cache in zip(outputs, caches, strict=True)
    ]
    assert prepared == [1, 1] if node_caches else 1 <= sum(prepared) <= 2
    for cache in set(caches):
        assert len(token_caches(cache)) == 1
        assert not [p for p in cache.iterdir() if p.name.startswith(".")], "no temporary left"
    if node_caches:  # both nodes prepared the same data on their own
        first, second = (token_caches(c)[0] for c in caches)
        assert first.name == second.name
        for name in ("vocab_src.json", "vocab_tgt.json", "report.json"):
            assert (first / name).read_text() == (second / name).read_text(), name
        for name in ("train_src.flat.npy", "train_tgt.offsets.npy"):
            np.testing.assert_array_equal(np.load(first / name), np.load(second / name))
    # Each rank took its share of the batches by global rank: 8 a rank (1 process: 13 or more).
    assert len(train_steps(tmp_path)) == 8
    if how != "torchrun":
        return
    # The 2-node run's checkpoint on 1 process: refused in one line.
    (tmp_path / "again").mkdir()
    again = run_train(
        *SEQ2SEQ,
        f"paths.data_dir={data}",
        f"data.cache_dir={caches[0]}",
        f"ckpt_path={best}",
        cwd=tmp_path / "again",
    )
    assert again.returncode == 1
    assert "Traceback" not in again.stderr, again.stderr[-3000:]
    assert again.stderr.strip().splitlines()[-1] == (
        "error: the checkpoint was written by a run of 2 processes and this run has 1 "
        "(trainer.num_nodes x trainer.devices): resume it with the same number, or start a new "
        "run (without ckpt_path) to train again"
    )


@pytest.mark.parametrize(
    ("how", "node_caches"), [("torchrun", True), ("slurm", False)], ids=["torchrun", "slurm"]
)
def test_devise_on_two_simulated_nodes(tmp_path: Path, how: str, node_caches: bool) -> None:
    data = tmp_path / "data"
    caches = [tmp_path / f"node{n}_cache" for n in (0, 1)] if node_caches else [data / "cache"] * 2
    # 20 classes x 13 images and one more: 261, which 2 ranks do not divide
    shapes = make_shapes(data / "shapes", n_per_class=13, size=64, dim=50, seed=0)
    first = sorted((shapes / "images" / "red_circle").iterdir())[0]
    shutil.copy(first, first.with_name("extra.png"))
    outputs = launch(
        how,
        tmp_path,
        (*DEVISE_RUN, "data.synthetic.n_per_class=13", f"paths.data_dir={data}", *WANDB),
        [[f"data.cache_dir={cache}"] for cache in caches],
    )
    names = ["node0_cache", "node1_cache"] if node_caches else []
    check_one_run(tmp_path, outputs, ("data", *names))
    # The precompute shared by global rank; each node ends with the whole cache, through the
    # shared folder or, on node-local folders, through the process group.
    for rank, (output, n) in enumerate(zip(outputs, (131, 130), strict=True)):
        assert f"precompute share of rank {rank} of 2: {n} images" in output, output[-3000:]
    merged = [next(Path(c).glob("features-*")) for c in dict.fromkeys(caches)]
    assert len(merged) == (2 if node_caches else 1)
    for cache in dict.fromkeys(caches):
        assert not list(Path(cache).glob("*.shards-*")), "the shares are removed once merged"
    report = json.loads((merged[0] / "report.json").read_text())
    assert report["images"] == 261
    if node_caches:
        assert merged[0].name == merged[1].name
        assert report == json.loads((merged[1] / "report.json").read_text())
        for name in ("features.npy", "ok.npy"):
            np.testing.assert_array_equal(np.load(merged[0] / name), np.load(merged[1] / name))
    # 99-100 training images per rank: a batch of 64 and the rest
    assert len(train_steps(tmp_path)) == 2
    if how == "slurm":  # and back: a 1-process checkpoint resumed on 2 nodes is refused too
        single = tmp_path / "single"
        single.mkdir()
        one = run_train(
            *DEVISE_RUN,
            "data.synthetic.n_per_class=13",
            f"paths.data_dir={data}",
            "trainer.max_epochs=1",
            cwd=single,
        )
        assert one.returncode == 0, one.stderr[-3000:]
        ckpt = one.stdout.strip().splitlines()[-1].split(" ", 1)[1]
        shutil.rmtree(tmp_path / "digests")
        for node in (0, 1):
            (tmp_path / f"node{node}.log").unlink()
        with pytest.raises(AssertionError) as refused:
            launch(
                how,
                tmp_path,
                (
                    *DEVISE_RUN,
                    "data.synthetic.n_per_class=13",
                    f"paths.data_dir={data}",
                    f"ckpt_path={ckpt}",
                ),
                [[], []],
            )
        assert "error: the checkpoint was written by a run of 1 processes and this run has 2 " in (
            str(refused.value)
        )


def test_submitit_local_launcher_runs_a_two_job_multirun(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    overrides = [o for o in SEQ2SEQ if not o.startswith("trainer.max_epochs")]
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "train.py"),
            "-m",
            "hydra/launcher=local",
            f"hydra.sweep.dir={sweep}",
            *overrides,
            "trainer.max_epochs=1",
            f"paths.data_dir={tmp_path / 'data'}",
            "seed=1,2",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    jobs = sorted(p for p in sweep.iterdir() if p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    for job, seed in zip(jobs, ("seed=1", "seed=2"), strict=True):
        assert seed in (job / ".hydra" / "overrides.yaml").read_text()
        assert len(list((job / "checkpoints").glob("best-*.ckpt"))) == 1
    # Each job ran in its own process through submitit (its folder keeps each job's log).
    logs = sorted((sweep / ".submitit").rglob("*_log.out"))
    assert len(logs) == 2, logs
    # Both jobs prepared the data at once into one cache folder: one cache, no temporary left.
    cache = tmp_path / "data" / "cache"
    assert len(token_caches(cache)) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]
