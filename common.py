"""Plumbing shared by the training and predict scripts.

Checkpoints that are written atomically and know which model they hold,
the one-line error handling of every command, and the argparse helpers.
"""

import argparse
import concurrent.futures
import contextlib
import glob
import os
import signal
import sys

# TF's C++ start-up chatter goes to stderr; keep warnings and errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# The variable that names the model inside every checkpoint this project writes.
_ID_KEY = "model_id/.ATTRIBUTES/VARIABLE_VALUE"


class UserError(Exception):
    """A problem the user can fix; printed as one line, never a traceback."""


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable, or holds another model."""


def _tmp_files(prefix):
    return glob.glob(glob.escape(prefix) + ".tmp-*")


@contextlib.contextmanager
def _sigint_deferred():
    """Hold Ctrl-C back until the block ends, so a rename sequence is never cut in two."""
    if sys.platform == "win32" or not _in_main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


@contextlib.contextmanager
def ctrl_c_between_steps():
    """Note Ctrl-C during training and raise it between steps, never inside a TensorFlow call.

    A KeyboardInterrupt raised while TF executes an op can come out as another
    exception (a traceback, exit 1); raised by the loop itself it is the clean
    one-line stop of `run`. Yields a function that raises if Ctrl-C was pressed.
    """
    if sys.platform == "win32" or not _in_main_thread():
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
    check()


def _in_main_thread():
    import threading

    return threading.current_thread() is threading.main_thread()


def _finish_or_discard_pending(prefix):
    """Complete a save that was committed but not fully renamed; drop any other leftovers.

    A save writes the whole new checkpoint under `PREFIX.tmp-PID`, then a
    `PREFIX.tmp-PID.commit` marker, then renames the files into place. A crash
    before the marker leaves only temporary files, which are never read; a crash
    after it is rolled forward here, so the checkpoint on disk is always either
    the old one or the new one, whole.
    """
    for marker in glob.glob(glob.escape(prefix) + ".tmp-*.commit"):
        tmp = marker[: -len(".commit")]
        for path in sorted(glob.glob(glob.escape(tmp) + ".*")):
            if path == marker:
                continue
            os.replace(path, prefix + path[len(tmp):])
        os.remove(marker)
    for path in _tmp_files(prefix):
        with contextlib.suppress(OSError):
            os.remove(path)


def check_writable(prefix):
    """Fail at once, not after training, when the checkpoint cannot be written at `prefix`."""
    directory = os.path.dirname(os.path.abspath(prefix))
    if not os.path.isdir(directory):
        raise CheckpointError(f"cannot write checkpoint {prefix}: folder {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise CheckpointError(f"cannot write checkpoint {prefix}: folder {directory} is not writable")


def save_checkpoint(model, prefix):
    """Write `model`'s variables at checkpoint `prefix`, atomically.

    The files that appear are `PREFIX.index` and `PREFIX.data-00000-of-00001`;
    the checkpoint is restored by its prefix. An interrupted or failed save
    leaves the previous checkpoint at `prefix` untouched.

    Args:
        model: a tf.Module with a string attribute MODEL_ID.
        prefix: checkpoint path prefix, e.g. "model2.ckpt".

    Returns:
        The absolute prefix written.
    """
    check_writable(prefix)
    prefix = os.path.abspath(prefix)
    _finish_or_discard_pending(prefix)
    tmp = f"{prefix}.tmp-{os.getpid()}"
    ckpt = tf.train.Checkpoint(model=model, model_id=tf.Variable(model.MODEL_ID, trainable=False))
    try:
        ckpt.write(tmp)
        written = sorted(p for p in glob.glob(glob.escape(tmp) + ".*"))
        with _sigint_deferred():
            with open(tmp + ".commit", "w") as f:
                f.flush()
                os.fsync(f.fileno())
            # Data shards first, index last: the index is what makes a prefix readable.
            written.sort(key=lambda p: p.endswith(".index"))
            # Shards of an older checkpoint with a different layout must not linger.
            for old in glob.glob(glob.escape(prefix) + ".data-*"):
                if old[len(prefix):] not in {p[len(tmp):] for p in written}:
                    os.remove(old)
            for path in written:
                os.replace(path, prefix + path[len(tmp):])
            os.remove(tmp + ".commit")
    except BaseException:
        if not os.path.exists(tmp + ".commit"):
            for path in _tmp_files(prefix):
                with contextlib.suppress(OSError):
                    os.remove(path)
        raise
    return prefix


def restore_checkpoint(model, prefix, train_hint=None):
    """Load a checkpoint written by `save_checkpoint` into `model`, verifying it completely.

    Args:
        model: the freshly built tf.Module to fill; its MODEL_ID must match the checkpoint's.
        prefix: checkpoint prefix (the path without `.index`); a path to the
            `.index` or `.data-…` file is accepted too.
        train_hint: the command that creates this checkpoint, quoted when it is missing.

    Returns:
        The prefix restored.

    Raises:
        CheckpointError: missing, unreadable, truncated, foreign or another model's checkpoint.
    """
    prefix = str(prefix)
    for suffix in (".index", ".data-00000-of-00001"):
        if prefix.endswith(suffix):
            prefix = prefix[: -len(suffix)]
    _finish_or_discard_pending(os.path.abspath(prefix))
    if not os.path.exists(prefix + ".index"):
        hint = f" — train it with: {train_hint}" if train_hint else ""
        raise CheckpointError(f"{prefix} not found{hint}")
    try:
        names = dict(tf.train.list_variables(prefix))
        if _ID_KEY not in names:
            raise CheckpointError(f"{prefix} is not a checkpoint written by this project's create_model scripts")
        found = tf.train.load_variable(prefix, _ID_KEY).decode()
        if found != model.MODEL_ID:
            raise CheckpointError(
                f"{prefix} holds the {found} model, not the {model.MODEL_ID} model this script needs"
            )
        status = tf.train.Checkpoint(model=model, model_id=tf.Variable(model.MODEL_ID, trainable=False)).read(prefix)
        status.assert_consumed()
    except CheckpointError:
        raise
    except (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError) as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot restore {prefix}: {detail[:200]} — retrain it") from None
    return prefix


def positive_int(text):
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def run(main):
    """Run a script's `main()`, turning a user's mistake or Ctrl-C into one line and an exit code."""
    import input_data  # noqa: PLC0415  (here so importing common never pulls in data code)

    prog = os.path.basename(sys.argv[0])
    try:
        code = main()
    except (UserError, input_data.DataError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted — nothing was written", file=sys.stderr)
        code = 130
    except SystemExit as e:  # argparse: usage errors (2) and --help (0)
        code = e.code
    end_process(code)


def end_process(code=0):
    """Flush stdout and stderr, then end the process at once with exit status `code`.

    Once TensorFlow is imported, the interpreter's own shutdown (tearing down
    thousands of modules and objects) takes ≈ 0.5 s on 2 cores — a quarter of
    `python -c "import tensorflow"` — and does nothing a finished script needs:
    whatever it writes is complete and closed before main() returns.
    """
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`) must not block the exit
            stream.flush()
    os._exit(code)


def evaluate(predict_fn, images, labels, batch_size=1000):
    """Accuracy of `predict_fn` (images → logits) over a whole set, in bounded-memory batches."""
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = predict_fn(images[start:start + batch_size])
        correct += int((tf.argmax(logits, axis=1).numpy() == labels[start:start + batch_size]).sum())
    return correct / len(images)


class Adam(tf.Module):
    """TF1's AdamOptimizer (the tutorial's), on the fused kernel it ran on.

    Keeping the update in a small module of our own means the checkpoint
    holds only the model, and the step costs one kernel per variable.
    """

    def __init__(self, variables, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.t = tf.Variable(0.0, trainable=False)

    def apply(self, grads, variables, learning_rate):
        self.t.assign_add(1.0)
        b1_power, b2_power = self.beta1 ** self.t, self.beta2 ** self.t
        for g, var, m, v in zip(grads, variables, self.m, self.v):
            tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=m.handle, v=v.handle, beta1_power=b1_power, beta2_power=b2_power,
                lr=learning_rate, beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon, grad=g)


def training_parser(description, *, steps, batch_size, learning_rate, checkpoint, log_every):
    """The command line both create_model scripts share (defaults shown in --help)."""
    import input_data  # noqa: PLC0415

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--steps", type=positive_int, default=steps,
                   help="training steps (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help="images per step (default: %(default)s)")
    p.add_argument("--learning-rate", type=positive_float, default=learning_rate,
                   help="learning rate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for initial weights, batch order and dropout; the same seed gives "
                        "the same weights on the same machine (default: %(default)s)")
    p.add_argument("--data-dir", default=str(input_data.DEFAULT_DATA_DIR),
                   help="where the MNIST IDX files are cached (default: MNIST_data next to this script)")
    p.add_argument("--checkpoint", default=checkpoint,
                   help="checkpoint prefix to write; files PREFIX.index and PREFIX.data-* appear "
                        "(default: %(default)s in the current directory)")
    p.add_argument("--log-every", type=positive_int, default=log_every,
                   help="print progress every N steps (default: %(default)s)")
    p.add_argument("--smoke", action="store_true",
                   help="a seconds-long run for CI: 20 steps, test accuracy on the first 1,000 "
                        "test images; the checkpoint is still written")
    return p


def load_data(args, one_hot=False):
    """MNIST for a training run; --smoke trims the test set so CI stays fast."""
    import input_data  # noqa: PLC0415

    data = input_data.read_data_sets(args.data_dir, one_hot=one_hot, seed=args.seed)
    if args.smoke:
        test = input_data.DataSet(data.test.images[:1000], data.test.labels[:1000], seed=args.seed)
        data = data._replace(test=test)
    return data


def load_data_while(args, build, one_hot=False):
    """`load_data(args)` on a second thread while `build()` runs on this one; returns (data, build()).

    Reading MNIST (gunzip, checksums, float conversion: 0.2–0.5 s) runs almost
    entirely outside the GIL, while building a model and tracing its graphs is
    Python on this thread: on two cores the load then costs ≈ 0.2 s less
    start-up (measured; see tests/benchmark.py). A data error is raised here,
    after `build()` has finished.
    """
    check_writable(args.checkpoint)  # before minutes of training, not after
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        loading = pool.submit(load_data, args, one_hot)
        built = build()
        return loading.result(), built


def finish(model, predict_fn, data, args, elapsed):
    """End of a training run: test accuracy (the tutorials' last line), then the checkpoint."""
    accuracy = evaluate(predict_fn, data.test.images, data.test.labels)
    print(f"test accuracy {accuracy:g}")
    prefix = save_checkpoint(model, args.checkpoint)
    print(f"trained {args.steps} steps of {args.batch_size} in {format_seconds(elapsed)}; "
          f"checkpoint written: {prefix} (.index, .data-00000-of-00001)")


def format_seconds(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
