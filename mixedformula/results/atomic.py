"""Atomic file replacement: a crash or Ctrl-C while writing never leaves a half-written file
where a good one was (write to a temporary file in the same directory, fsync, ``os.replace``)."""

from __future__ import annotations

import os
import tempfile


def atomic_write(path: str, write, suffix: str = "", shared: bool = False) -> str:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically.

    ``shared=True`` gives the file the permissions a normal ``open`` would (mkstemp makes 0600).
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", suffix=suffix,
                               dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if shared:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
