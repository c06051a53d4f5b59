"""Atomic file writes and JSON reads shared by every module that writes artifacts."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from assignment4.errors import RunError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success move it onto `path` (os.replace).

    Readers see the old file or the new one, never half of one, even if the writer is killed.
    A write that fails (e.g. a full disk) raises `RunError` saying the previous file is intact.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.close(fd)
    except OSError as e:
        raise _write_failed(path, e) from None
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are for everyone
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _write_failed(path, e) from None
        raise


def _write_failed(path: Path, e: OSError) -> RunError:
    reason = e.strerror or str(e)
    kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
    return RunError(
        f"Could not write {path} ({reason}); {kept}. Fix the cause (e.g. free disk space) "
        "and run the same command again to resume."
    )


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(data: dict, path: str | os.PathLike) -> Path:
    """Write a JSON object atomically, pretty-printed; NaN becomes null (valid JSON)."""
    return write_text(json.dumps(_json_safe(data), indent=2) + "\n", path)


def read_json(path: str | os.PathLike) -> dict:
    """Read one JSON object; a missing or broken file raises `RunError` naming it."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is damaged: it could not be read as JSON ({e})") from None
    if not isinstance(data, dict):
        raise RunError(
            f"{path} is damaged: it should hold a JSON object, not a {type(data).__name__}"
        )
    return data
