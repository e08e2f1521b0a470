"""Temporary files a killed process left behind, found by the process id in their names.

A writer names its temporary files with its own process id (`model2.ckpt.tmp-4242.index`,
`.train-images-idx3-ubyte.gz.4242.x1y2.part`). A `kill -9`, a power cut or an `os._exit`
from another thread leaves them behind; the next writer removes those whose process is
gone, and never a live process's files, nor any file whose name does not match exactly.
Standard library only (input_data.py uses it and must not import TensorFlow).
"""

import contextlib
import os
import re
import shutil


def process_is_running(pid):
    """Whether a process with id `pid` exists (on this machine, in this PID namespace).

    Args:
        pid: int.

    Returns:
        True if it exists, even if it belongs to another user.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def remove_dead_owners(directory, pattern):
    """Remove the entries of `directory` that `pattern` names and whose writer has exited.

    Args:
        directory: the folder to look in.
        pattern: compiled regex matched against whole entry names; its group
            "pid" is the writer's process id. Folders that match are removed
            with their content (TensorFlow's `PREFIX_temp/` staging folders).

    Returns:
        The names removed.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if not match or match.group("pid") == str(os.getpid()) or process_is_running(int(match.group("pid"))):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(name)
    return removed


def pid_pattern(fixed_start, rest):
    """A regex for `remove_dead_owners`: the literal `fixed_start`, a process id, then regex `rest`."""
    return re.compile(re.escape(fixed_start) + r"(?P<pid>[0-9]{1,10})" + rest)
