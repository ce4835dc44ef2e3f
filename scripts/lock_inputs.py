"""Print a fingerprint of what the lock files are made from: the Python
versions and the dependencies (with every extra) that pyproject.toml names.

scripts/lock writes it into each lock file; scripts/venv refuses a lock file
whose fingerprint differs, so a dependency edited in pyproject.toml without
running scripts/lock is said at once instead of being left out of .venv.
Other edits of pyproject.toml (tool settings) leave the lock files valid.
"""

import hashlib
import json
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def fingerprint(pyproject: Path = PYPROJECT) -> str:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    inputs = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


if __name__ == "__main__":
    sys.stdout.write(fingerprint() + "\n")
