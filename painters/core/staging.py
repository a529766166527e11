"""Writing a file or folder whole or not at all: it is staged beside its target, in a folder whose name says
which process on which machine staged it, then renamed into place. A run killed mid-write cannot clean
up, so each new staging first removes what dead processes of this machine left in the same folder (and
says so): a killed export or model conversion costs disk space only until the next one."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

PREFIX = ".painters-staging-"


def staging_folder(parent: Path) -> Path:
    """A new, empty staging folder in `parent`, after removing stale ones there."""
    remove_stale(parent)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}@{socket.gethostname()}.", dir=parent))


def remove_stale(parent: Path) -> list[Path]:
    """Remove the staging folders in `parent` whose process (on this machine) has ended; returns them."""
    removed = []
    for path in sorted(parent.glob(PREFIX + "*")):
        pid, _, rest = path.name[len(PREFIX) :].partition("@")
        host = rest.rpartition(".")[0]
        if pid.isdigit() and host == socket.gethostname() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            print(f"note: removed {path}, left by a run that was killed while writing", file=sys.stderr)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # PermissionError (another user's process) means alive, as success does
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
