"""A run directory used again keeps the earlier run's saved config.

Hydra writes the composed config to ``<run dir>/.hydra/`` at every start, so a second run into the
same ``hydra.run.dir`` (a requeued SLURM job, a fixed directory given twice) would overwrite the
first run's record of what it ran. ``KeepEarlierConfig``, a Hydra callback, moves an existing
``.hydra/`` aside to ``.hydra.1/`` (``.2``, ... when taken) before Hydra writes the new one, and
says so in one line. Only the first process does it and writes the config: the other ranks a
launcher starts with the same directory (torchrun, srun, Lightning's DDP children) write none, so
they cannot race it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

# The variables launchers set for processes other than the first (Lightning's DDP launcher,
# torchrun, SLURM, MPI): any of them non-zero means a later rank of a run already started.
RANK_VARIABLES = (
    "RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
    "PMIX_RANK", "JSM_NAMESPACE_RANK",
)  # fmt: skip


def first_process() -> bool:
    """Whether this process is rank 0 of its run (or not launched as a rank at all)."""
    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def keep_earlier(output_dir: Path, subdir: str = ".hydra") -> Path | None:
    """Move ``output_dir/subdir`` to the first free ``subdir.N``; returns where, or None."""
    saved = output_dir / subdir
    if not (saved / "config.yaml").is_file():
        return None
    n = 1
    while (output_dir / f"{subdir}.{n}").exists():
        n += 1
    target = output_dir / f"{subdir}.{n}"
    saved.rename(target)
    return target


class KeepEarlierConfig(Callback):
    """Hydra callback (``hydra.callbacks``): before a single run starts, an earlier run's saved
    config in the same run directory is moved aside instead of overwritten."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.output_subdir is None:
            return
        if not first_process():  # rank 0 writes the run's config; the others would race it
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.output_subdir = None
            return
        moved = keep_earlier(Path(config.hydra.run.dir), str(config.hydra.output_subdir))
        if moved is not None:
            print(
                f"note: {config.hydra.run.dir} held an earlier run; its config is kept in {moved}"
            )
