"""How every command of this project starts, talks and ends.

    import cli  # standard library only: safe before the heavy imports

    if __name__ == "__main__":
        cli.exit_on_ctrl_c()  # before TensorFlow's ≈ 2 s import
    import predict            # … the heavy imports …

    if __name__ == "__main__":
        cli.run(main)

A user's mistake is one line on stderr and a non-zero exit, never a traceback;
Ctrl-C is one line saying what was (not) written, exit 130; output to a reader
that went away (`| head`) ends quietly, to a full disk is one line; training
prints through `Output`, so a closed or full stdout never stops it from saving.
This module imports only the standard library.
"""

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading

INTERRUPTED = 130  # the shell's code for "ended by SIGINT"
SEED_LIMIT = 2 ** 31  # seeds go into int32 stateless-random seeds, so 0 .. 2**31 - 1


class UserError(Exception):
    """A problem the user can fix; printed as one line, never a traceback."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what it left behind (printed after "interrupted — ")."""


def one_line(text, limit=200):
    """`text` made safe to echo inside a one-line message.

    Control characters (newlines, escapes) and undecodable bytes become `?` and
    the result is cut to `limit` characters, so nothing read from a file or a
    path can split a message or drive the terminal.

    Args:
        text: str or bytes.
        limit: maximum length of the result.

    Returns:
        A printable str.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _program():
    return os.path.basename(sys.argv[0]) or "python"




def exit_on_ctrl_c(detail=""):
    """From now on, Ctrl-C ends the process at once with one line and exit 130.

    Called at the very top of an entry script, before the heavy imports: a
    KeyboardInterrupt raised inside `import tensorflow` is a long traceback,
    and one raised inside a TensorFlow call can come out as another error. The
    handler runs between Python bytecodes, so it never cuts a write of ours in
    two; scripts that write files switch to `ctrl_c_deferred` for that part.

    Args:
        detail: what is left behind, printed after "interrupted — " (e.g.
            "nothing was written"); "" prints "interrupted" alone.
    """
    line = (f"{_program()}: interrupted" + (f" — {detail}" if detail else "") + "\n").encode("utf-8", "replace")
    # A copy of stderr as it is now: while TensorFlow is imported, fd 2 points at
    # quiet_tensorflow's capture file, which os._exit would leave unread.
    try:
        stderr = os.dup(2)
    except OSError:
        stderr = 2

    def handler(signum, frame):
        with contextlib.suppress(OSError):
            os.write(stderr, line)
        os._exit(INTERRUPTED)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)


@contextlib.contextmanager
def ctrl_c_deferred():
    """Note Ctrl-C and raise it only where the caller checks, never inside a TensorFlow call.

    Yields:
        check(): raises KeyboardInterrupt if Ctrl-C was pressed since the block began.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    pressed = []
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(True))

    def check():
        if pressed:
            raise KeyboardInterrupt

    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)


class Output:
    """Lines for stdout that never stop the work when stdout is closed, full or a finished pipe.

    `create_model_2.py | head -3` must still train and save: once a write to
    stdout fails, the rest of the output is dropped and the work goes on.
    """

    def __init__(self):
        self.broken = False

    def __call__(self, text):
        """Print `text` and flush it now (progress lines must show as they happen)."""
        if self.broken or sys.stdout is None:
            return
        try:
            print(text, flush=True)
        except (OSError, ValueError):  # EPIPE, ENOSPC, EBADF; ValueError: stdout closed
            self.broken = True
            _stdout_to_nowhere()


def _number(text, convert, kind):
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None


def _stdout_to_nowhere():
    """Point fd 1 at /dev/null, so that no later write or final flush fails again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def positive_int(text):
    """argparse type: an integer ≥ 1."""
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text):
    """argparse type: a finite number > 0."""
    value = _number(text, float, "a number")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def seed(text):
    """argparse type: a random seed, 0 .. 2**31 - 1 (it ends up in int32 stateless seeds)."""
    value = _number(text, int, "a whole number")
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 0 and {SEED_LIMIT - 1}, got {value}")
    return value


def run(main, nothing_written="nothing was written"):
    """Run a script's `main()`, turning a user's mistake or Ctrl-C into one line and an exit code.

    Args:
        main: the script's main(); returns an exit code or None.
        nothing_written: what Ctrl-C left behind, unless the Interrupted
            raised says otherwise; "" for a command that writes nothing.
    """
    import input_data  # noqa: PLC0415  (its DataError; numpy is loaded by now anyway)

    prog = _program()
    try:
        code = main()
    except (UserError, input_data.DataError) as e:
        print(f"{prog}: error: {one_line(e, 1000)}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt as e:
        detail = str(e) if isinstance(e, Interrupted) else nothing_written
        print(f"{prog}: interrupted" + (f" — {detail}" if detail else ""), file=sys.stderr)
        code = INTERRUPTED
    except SystemExit as e:  # argparse: usage errors (2) and --help (0)
        code = e.code
    except OSError as e:
        # A write that nothing in main() expects to fail: stdout whose reader went away (`| head`),
        # or a full disk (`> /dev/full`). Anything else is a bug and keeps its traceback.
        if e.errno not in (errno.EPIPE, errno.ENOSPC):
            raise
        _stdout_to_nowhere()
        if e.errno == errno.EPIPE:
            code = 128 + signal.SIGPIPE  # quietly, as `yes | head -1` ends `yes`
        else:
            print(f"{prog}: error: cannot write: {e.strerror} — free some space", file=sys.stderr)
            code = 1
    end_process(code)


def end_process(code=0):
    """Flush stdout and stderr, then end the process at once with exit status `code`.

    Once TensorFlow is imported, the interpreter's own shutdown (tearing down
    thousands of modules and objects) takes ≈ 0.5 s on 2 cores — a quarter of
    `python -c "import tensorflow"` — and does nothing a finished script needs:
    whatever it writes is complete and closed before main() returns. Ctrl-C is
    ignored from here on: the work is done, and a traceback now would only lie.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message")
        with contextlib.suppress(OSError, ValueError):
            print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed pipe, `>&-`: exit anyway
            stream.flush()
    os._exit(code)
