"""A quiet TensorFlow start: its C++ log lines filtered by `TF_CPP_MIN_LOG_LEVEL`.

TensorFlow honours `TF_CPP_MIN_LOG_LEVEL` (0 all, 1 no INFO, 2 no WARNING, 3 no ERROR) for
most of its C++ log lines, but not for those written while its shared libraries load, before
absl's logging starts: "WARNING: All log messages before absl::InitializeLog() ...", the
oneDNN banner and "Could not find cuda drivers", each printed twice. Those are written
straight to file descriptor 2, so Python cannot intercept them as text. Here, the first
`import tensorflow` after `import assignment4` runs with descriptor 2 pointed at a temporary
file; afterwards every line is written back to the real stderr except the absl-formatted
ones (`I0000 00:00:... file.cc:NN] ...`) whose severity is below the level in force. Other
output (Python warnings, errors raised by the import) passes through unchanged.

This module must not import TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = "3"

# absl's prefix: severity letter, MMDD, time, thread id, file:line]
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\]\s]+:\d+\] ")
_PRE_ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def log_level() -> int:
    """The `TF_CPP_MIN_LOG_LEVEL` in force (0 when unset or not a number)."""
    try:
        return int(os.environ.get(LEVEL_ENV, "0"))
    except ValueError:
        return 0


def filter_log(text: str, level: int) -> str:
    """`text` without the absl-formatted lines below `level` (and absl's pre-init notice).

    A line that continues a dropped one (TensorFlow's CPU-feature notice spans two lines:
    "To enable the following instructions: ...") is dropped with it.
    """
    if level <= 0:
        return text
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match:
            dropping = _SEVERITY[match.group(1)] < level
        elif line.startswith(_PRE_ABSL_NOTICE):
            dropping = True
        elif dropping and line.startswith("To enable the following instructions:"):
            pass  # second line of the CPU-feature notice
        else:
            dropping = False
        if not dropping:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def filtered_stderr(level: int | None = None):
    """Route file descriptor 2 to a temporary file; write it back filtered by `level` on exit.

    Does nothing (passes everything through) when the level is 0 or descriptor 2 cannot be
    duplicated (no console, e.g. pythonw on Windows).
    """
    level = log_level() if level is None else level
    if level <= 0:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as buffer:
        os.dup2(buffer.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buffer.seek(0)
            text = filter_log(buffer.read().decode("utf-8", "replace"), level)
            if text:
                os.write(2, text.encode("utf-8", "replace"))


class _QuietLoader(importlib.abc.Loader):
    """Delegates to TensorFlow's own loader, with stderr filtered while the module runs."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # resource readers and the like: TensorFlow's own loader
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its real loader, for anyone who inspects it later.
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        with filtered_stderr():
            self._loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, giving its spec the filtering loader, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        uninstall()
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _QuietTensorFlowFinder()


def install() -> None:
    """Filter the first `import tensorflow` of this process (no-op if already imported)."""
    if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    """Stop filtering future imports (TensorFlow's own output is then left alone)."""
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)
