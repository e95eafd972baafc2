#!/usr/bin/env python3
"""Run ruff with the ``[tool:ruff]`` section of setup.cfg, which ruff itself does not read.

Usage: ``python .ci/ruff.py check .`` or ``python .ci/ruff.py format --check .``
"""

import configparser
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
parser = configparser.ConfigParser()
parser.read(root / "setup.cfg")
overrides = [f"--config={key} = {value}" for key, value in parser["tool:ruff"].items()]
command, *rest = sys.argv[1:] or ["check", "."]
sys.exit(subprocess.call([sys.executable, "-m", "ruff", command, *overrides, *rest], cwd=root))
