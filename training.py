"""What create_model_1.py and create_model_2.py share: the command line, the optimizer, loading
MNIST while the graphs are traced, the divergence check, and the end of a run (test accuracy,
then the checkpoint)."""

import argparse
import concurrent.futures

import numpy as np

import checkpoint
import cli
import input_data
import notadigit
from quiet_tensorflow import tf

# TF1's split leaves 55,000 training images; next_batch cannot draw more than that at once.
TRAIN_SIZE = input_data.MNIST_FILES[input_data.TRAIN_IMAGES].count - 5000


class Diverged(cli.UserError):
    """The loss or the weights became NaN or infinite."""


def batch_size_flag(text):
    """argparse type: images per step, 1 .. 55,000 (the training set)."""
    value = cli.positive_int(text)
    if value > TRAIN_SIZE:
        raise argparse.ArgumentTypeError(f"must be at most {TRAIN_SIZE:,} (the training set), got {value:,}")
    return value


def training_parser(description, *, steps, batch_size, learning_rate, checkpoint, log_every):
    """The command line both create_model scripts share (defaults shown in --help)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--steps", type=cli.positive_int, default=steps,
                   help="training steps (default: %(default)s)")
    p.add_argument("--batch-size", type=batch_size_flag, default=batch_size,
                   help=f"images per step, at most {TRAIN_SIZE:,} (default: %(default)s)")
    p.add_argument("--learning-rate", type=cli.positive_float, default=learning_rate,
                   help="learning rate (default: %(default)s)")
    p.add_argument("--seed", type=cli.seed, default=0,
                   help=f"seed for initial weights, batch order and dropout, 0 to {cli.SEED_LIMIT - 1}; the "
                        "same seed gives the same weights on the same machine (default: %(default)s)")
    p.add_argument("--data-dir", default=str(input_data.DEFAULT_DATA_DIR),
                   help="where the MNIST IDX files are cached (default: MNIST_data next to this script)")
    p.add_argument("--checkpoint", default=checkpoint,
                   help="checkpoint prefix to write; files PREFIX.index and PREFIX.data-* appear "
                        "(default: %(default)s in the current directory)")
    p.add_argument("--log-every", type=cli.positive_int, default=log_every,
                   help="print progress every N steps (default: %(default)s)")
    p.add_argument("--smoke", action="store_true",
                   help="a seconds-long run for CI: 20 steps, test accuracy on the first 1,000 "
                        "test images; the checkpoint is still written")
    return p


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
        """One Adam update of `variables` by `grads` (lists in the same order) at `learning_rate`."""
        self.t.assign_add(1.0)
        b1_power, b2_power = self.beta1 ** self.t, self.beta2 ** self.t
        for g, var, m, v in zip(grads, variables, self.m, self.v):
            tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=m.handle, v=v.handle, beta1_power=b1_power, beta2_power=b2_power,
                lr=learning_rate, beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon, grad=g)


def load_data(args, one_hot=False):
    """MNIST for a training run; --smoke trims the test set so CI stays fast."""
    data = input_data.read_data_sets(args.data_dir, one_hot=one_hot, seed=args.seed)
    if args.smoke:
        test = input_data.DataSet(data.test.images[:1000], data.test.labels[:1000], seed=args.seed)
        data = data._replace(test=test)
    return data


def load_data_while(args, build, check_interrupt, one_hot=False):
    """`load_data(args)` on a second thread while `build()` runs on this one; returns (data, build()).

    Reading MNIST (gunzip, checksums, float conversion: 0.2–0.5 s) runs almost
    entirely outside the GIL, while building a model and tracing its graphs is
    Python on this thread: on two cores the load then costs ≈ 0.2 s less
    start-up (measured; see tests/benchmark.py). A data error is raised here,
    after `build()` has finished. The checkpoint folder is checked first, so a
    typo fails before minutes of training, not after.

    Args:
        args: the parsed training flags.
        build: builds the model and traces its graphs; its result is returned.
        check_interrupt: raises KeyboardInterrupt if Ctrl-C was pressed; called
            while waiting for the data, so a slow download can be stopped.
        one_hot: labels as one-hot rows.
    """
    checkpoint.check_writable(args.checkpoint)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        loading = pool.submit(load_data, args, one_hot)
        built = build()
        while True:
            check_interrupt()
            try:
                return loading.result(timeout=0.1), built
            except concurrent.futures.TimeoutError:
                pass
    finally:
        # Never wait for a download the user gave up on; its .part file goes with the next run.
        pool.shutdown(wait=False, cancel_futures=True)


def check_loss(loss, step):
    """Stop a run whose loss is no longer finite, before it can overwrite a good checkpoint.

    Args:
        loss: the step's loss (a scalar tensor; reading it costs microseconds
            once the step has run).
        step: how many steps have run, counting this one.

    Raises:
        Diverged: the loss is NaN or infinite.
    """
    if not np.isfinite(float(loss)):
        raise Diverged(f"training diverged at step {step} — lower --learning-rate; nothing was written")


def logits_of(predict_fn, images, batch_size=1000):
    """`predict_fn` (images → logits) over a whole set, in bounded-memory batches.

    Args:
        predict_fn: N×784 float32 → N×10 logits, without dropout.
        images: N×784 float32.
        batch_size: images per call.

    Returns:
        N×10 float32 NumPy array.
    """
    parts = [np.asarray(predict_fn(images[start:start + batch_size]))
             for start in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)


def evaluate(predict_fn, images, labels, batch_size=1000):
    """Accuracy of `predict_fn` (images → logits) over a whole set, in bounded-memory batches."""
    return float((logits_of(predict_fn, images, batch_size).argmax(axis=1) == labels).mean())


def finish(model, predict_fn, data, args, elapsed, say, check_interrupt):
    """End of a training run: test accuracy (the tutorials' last line), then the checkpoint.

    The checkpoint also holds the model's "not a digit" threshold
    (notadigit.DigitScore), calibrated here on the validation digits.

    Args:
        model: the trained tf.Module.
        predict_fn: images → logits, without dropout.
        data: the run's Datasets.
        args: the parsed training flags.
        elapsed: seconds the training loop took.
        say: prints a line on stdout (a cli.Output).
        check_interrupt: raises KeyboardInterrupt if Ctrl-C was pressed.

    Raises:
        Diverged: a weight is NaN or infinite; nothing is written.
    """
    bad = checkpoint.non_finite_variable(model.variables)
    if bad:
        raise Diverged(f"training diverged by step {args.steps} ({cli.one_line(bad)} is NaN or infinite) — "
                       f"lower --learning-rate; nothing was written")
    accuracy = evaluate(predict_fn, data.test.images, data.test.labels)
    check_interrupt()
    say(f"test accuracy {accuracy:g}")
    score = notadigit.calibrate(logits_of(predict_fn, data.validation.images))
    check_interrupt()
    prefix = checkpoint.save_checkpoint(model, args.checkpoint, extras={score.NAME: score})
    say(f"trained {args.steps} steps of {args.batch_size} in {format_seconds(elapsed)}; "
        f"checkpoint written: {cli.one_line(prefix)} (.index, .data-00000-of-00001)")


def format_seconds(seconds):
    """`75` → "1m15s", `9.6` → "10s"."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
