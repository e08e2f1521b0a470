"""TensorFlow, imported without the C++ start-up lines it prints on stderr.

    from quiet_tensorflow import tf

`import tensorflow` (2.21, Linux) writes, before its own logging is set up
and whatever TF_CPP_MIN_LOG_LEVEL says:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 … port.cc:153] oneDNN custom operations are on. …
    I0000 … cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 … cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: … (303)

(the first three twice). A new user reads the E line as a failure. So, while
TensorFlow is imported and its runtime started, file descriptor 2 points at a
temporary file; afterwards these known lines are dropped and everything else
is copied to the real stderr, in order, so a real error stays visible. A
temporary file rather than a pipe: it can never fill up and block the import,
however much a TF_CPP_MAX_VLOG_LEVEL debugging session logs.
"""

import contextlib
import os
import re
import sys
import tempfile

# Hide TensorFlow's own INFO and WARNING lines while it runs; its errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Start-up lines of tensorflow 2.21.0 and tensorflow-cpu 2.21.0 on a machine without a GPU
# (seen on this project's machine); each matched as a whole line.
STARTUP_LINES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+ +\d+ (?:"
    r"port\.cc:\d+\] oneDNN custom operations are on\. .*"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\."
    r"|cuda_platform\.cc:\d+\] failed call to cuInit: .*"
    r"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU instructions .*)"
    r"|To enable the following instructions: .*, in other operations, rebuild TensorFlow with the "
    r"appropriate compiler flags\.")


def drop_startup_lines(text):
    """`text` (what went to stderr) without TensorFlow's known start-up lines.

    Args:
        text: str, lines ending in "\\n" (the last one may not).

    Returns:
        The other lines, unchanged and in order.
    """
    return "".join(line for line in text.splitlines(keepends=True)
                   if not STARTUP_LINES.fullmatch(line.rstrip("\r\n")))


@contextlib.contextmanager
def startup_lines_dropped():
    """While the block runs, stderr (fd 2) goes to a temporary file; then all but the known lines are copied back."""
    try:
        capture = tempfile.TemporaryFile()
    except OSError:  # no writable temporary folder: better the lines than no TensorFlow
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # stderr closed (`2>&-`): nothing to keep clean
        capture.close()
        yield
        return
    with capture:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()  # Python's own writes (a warning, a traceback) go into the file too
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = drop_startup_lines(capture.read().decode("utf-8", "replace"))
            if kept:
                with contextlib.suppress(OSError):
                    os.write(2, kept.encode("utf-8"))


with startup_lines_dropped():
    import tensorflow as tf  # noqa: E402

    # The CUDA probe (and its E line) runs when the runtime starts, not at import: start it here.
    tf.config.list_logical_devices()

__all__ = ["tf"]
