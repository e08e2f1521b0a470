"""The two tutorial models, their training scripts and their checkpoints."""

import glob
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import checkpoint
import create_model_1
import create_model_2
import training
from conftest import train
from create_model_1 import SoftmaxRegression
from create_model_2 import DeepCNN
from quiet_tensorflow import tf

ROOT = Path(__file__).resolve().parent.parent


def random_images(n, seed=0):
    return np.random.default_rng(seed).random((n, 784), dtype=np.float32)


def test_deep_cnn_gives_n_by_10_logits_on_random_input():
    assert DeepCNN()(random_images(3)).shape == (3, 10)


def test_softmax_regression_gives_n_by_10_logits_on_random_input():
    assert SoftmaxRegression()(random_images(4)).shape == (4, 10)


def test_softmax_regression_starts_from_zeros_like_the_tutorial():
    np.testing.assert_array_equal(SoftmaxRegression()(random_images(2)).numpy(), np.zeros((2, 10)))


def test_deep_cnn_applies_dropout_only_when_training():
    model, x = DeepCNN(), random_images(8)
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    assert not np.allclose(model(x).numpy(), model(x, dropout_seed=[0, 1]).numpy())


def test_deep_cnn_loss_falls_over_a_few_steps():
    model = DeepCNN(seed=3)
    step = create_model_2.make_train_step(model, training.Adam(model.trainable_variables), 3)
    x, y = random_images(50, seed=1), np.arange(50, dtype=np.int64) % 10
    losses = [float(step(x, y, np.float32(1e-3), np.int64(i), np.float32(0))) for i in range(15)]
    assert losses[-1] < 0.5 * losses[0]


def test_the_number_readers_cuts_join_the_loss_only_with_their_weight():
    x, y = random_images(20, seed=1), np.arange(20, dtype=np.int64) % 10
    cut_images = tf.Variable(random_images(6, seed=2))
    cut_labels = tf.Variable(np.array([3, -1, 7, -1, -1, 0], np.int64))

    def first_loss(cut_weight):
        model = DeepCNN(seed=3)
        step = create_model_2.make_train_step(model, training.Adam(model.trainable_variables), 3,
                                              cuts=(cut_images, cut_labels, 4, 0.5))
        return float(step(x, y, np.float32(1e-3), np.int64(0), np.float32(cut_weight)))

    model = DeepCNN(seed=3)
    plain = create_model_2.make_train_step(model, training.Adam(model.trainable_variables), 3)
    without = float(plain(x, y, np.float32(1e-3), np.int64(0), np.float32(0)))
    assert first_loss(0.0) == pytest.approx(without, rel=1e-5)
    assert first_loss(1.0) > first_loss(0.0) + 0.1


def test_softmax_regression_loss_falls_over_a_few_steps(mnist):
    model = SoftmaxRegression()
    step = create_model_1.make_train_step(model)
    x, y = mnist.train.images[:100], mnist.train.labels[:100].astype(np.int64)
    losses = [float(step(x, y, np.float32(0.01))) for _ in range(10)]
    assert losses[-1] < 0.5 * losses[0]


def test_same_seed_gives_same_weights_and_another_seed_does_not(mnist_dir, tmp_path):
    def weights(seed, name):
        prefix = str(tmp_path / name)
        create_model_2.main(["--steps", "3", "--seed", str(seed), "--data-dir", mnist_dir,
                             "--checkpoint", prefix, "--smoke"])
        model = DeepCNN(seed=99)
        checkpoint.restore_checkpoint(model, prefix)
        return [v.numpy() for v in model.trainable_variables]

    a, b, c = weights(1, "a"), weights(1, "b"), weights(2, "c")
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_model1_short_run_beats_an_honest_floor(mnist, mnist_dir, tmp_path, capsys):
    # 300 steps of 100 (a third of the tutorial's run) reach ≈ 0.90 on the 10,000 test images.
    prefix = str(tmp_path / "model.ckpt")
    create_model_1.main(["--steps", "300", "--data-dir", mnist_dir, "--checkpoint", prefix])
    printed = float(re.search(r"test accuracy ([\d.]+)", capsys.readouterr().out).group(1))
    model = SoftmaxRegression()
    checkpoint.restore_checkpoint(model, prefix)
    accuracy = training.evaluate(model, mnist.test.images, mnist.test.labels)
    assert accuracy == pytest.approx(printed, abs=1e-4)
    assert accuracy > 0.88


def test_model2_smoke_run_writes_a_checkpoint_predict_can_restore(mnist_dir, tmp_path, capsys):
    prefix = str(tmp_path / "model2.ckpt")
    create_model_2.main(["--smoke", "--data-dir", mnist_dir, "--checkpoint", prefix])
    out = capsys.readouterr().out
    assert "step 10, training accuracy" in out and "test accuracy" in out
    assert sorted(os.listdir(tmp_path)) == ["model2.ckpt.data-00000-of-00001", "model2.ckpt.index", "model2.ckpt.lock"]
    checkpoint.restore_checkpoint(DeepCNN(), prefix)


def test_fast_schedule_warms_up_then_anneals_to_zero():
    rates = [create_model_2.learning_rate_at(s, 1000, 2e-3, 0.15) for s in range(1000)]
    assert rates[0] < rates[149] == pytest.approx(2e-3)
    assert all(a >= b for a, b in zip(rates[150:], rates[151:]))
    assert rates[-1] < 1e-6


def mnist_digits_56(mnist, n=20):
    """The first n test digits at the pens' 56×56 working size, as the redraw sees them."""
    return create_model_2.pen_canvas(mnist.test.images[:n])


@pytest.mark.parametrize("pen", range(len(create_model_2._PENS)))
def test_every_other_pen_redraws_the_same_digit_in_the_same_place(pen, mnist):
    before = mnist_digits_56(mnist).numpy()[..., 0]
    after = create_model_2._PENS[pen](mnist_digits_56(mnist)).numpy()[..., 0]
    assert after.min() >= 0.0 and after.max() <= 1.0 + 1e-6
    ys, xs = np.mgrid[0:56, 0:56]
    for a, b in zip(before, after):
        centre = [(w * a).sum() / a.sum() - (w * b).sum() / b.sum() for w in (ys, xs)]
        # Within 1.5 MNIST pixels: an even-width pen weights thin and thick strokes alike,
        # which moves the centre of mass a little.
        assert np.hypot(*centre) < 3.0
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.5


def test_fatter_pens_add_ink_and_the_thinner_pen_removes_it(mnist):
    x = mnist_digits_56(mnist)
    ink = {i: float(tf.reduce_sum(tf.cast(f(x) > 0.5, tf.float32))) for i, f in enumerate(create_model_2._PENS)}
    plain = float(tf.reduce_sum(tf.cast(x > 0.5, tf.float32)))
    assert ink[0] >= plain  # a fat marker thinned back: closed gaps, nothing lost
    assert ink[3] > 1.2 * plain and ink[4] > ink[3]
    assert ink[5] < 0.8 * plain


def test_pen_redraw_changes_only_the_chosen_share_of_a_batch(mnist):
    images = mnist.test.images[:200]

    def changed(share):
        out = create_model_2.redraw_with_other_pens(images, share, tf.constant([4, 2], tf.int32)).numpy()
        assert out.shape == images.shape
        return np.abs(out - images).max(axis=1) > 1e-3

    assert not changed(0.0).any()
    assert changed(1.0).all()
    np.testing.assert_array_equal(changed(0.5), np.arange(200) < 100)


def test_pen_redraw_is_reproducible_from_its_seed_and_varies_with_it(mnist):
    images = mnist.test.images[:20]

    def redraw(step):
        return create_model_2.redraw_with_other_pens(images, 0.5, tf.constant([1, step], tf.int32)).numpy()

    np.testing.assert_array_equal(redraw(7), redraw(7))
    assert len({redraw(step).tobytes() for step in range(12)}) >= 4  # several pens over a few steps


@pytest.mark.parametrize("flags", [["--steps", "0"], ["--learning-rate", "-1"], ["--batch-size", "x"],
                                   ["--learning-rate", "nan"], ["--batch-size", "55001"], ["--seed", "-1"],
                                   ["--seed", str(2 ** 64)], ["--seed", str(2 ** 31)]])
def test_bad_training_flags_are_rejected_with_usage(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        create_model_2.main(flags)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("script", [create_model_1, create_model_2])
def test_help_lists_every_flag_and_exits_cleanly(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    assert "--steps" in capsys.readouterr().out


def test_ctrl_c_stops_training_with_one_line_and_no_checkpoint(mnist_dir, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "create_model_2.py"), "--steps", "100000", "--log-every", "1",
         "--data-dir", mnist_dir, "--checkpoint", str(tmp_path / "model2.ckpt")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.stdout.readline().startswith("step 5,"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "create_model_2.py: interrupted — nothing was written"
    assert glob.glob(str(tmp_path / "model2.ckpt*")) == []


@pytest.mark.slow
def test_default_model1_run_reaches_the_tutorials_accuracy(tmp_path, mnist_dir):
    assert train("create_model_1.py", tmp_path, mnist_dir)[1] >= 0.91


@pytest.mark.slow
def test_default_model2_run_reaches_the_tutorials_accuracy(tutorial_model2):
    prefix, accuracy = tutorial_model2
    if accuracy is None:
        pytest.skip("MODEL2_CHECKPOINT given: no training run to judge")
    assert accuracy >= 0.992


@pytest.mark.slow
def test_fast_model2_run_reaches_the_tutorials_accuracy(fast_model2):
    prefix, accuracy = fast_model2
    if accuracy is None:
        pytest.skip("FAST_MODEL2_CHECKPOINT given: no training run to judge")
    assert accuracy >= 0.992


def test_unwritable_checkpoint_folder_is_refused_before_training(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(create_model_2, "DeepCNN", None)  # would fail loudly if training began
    with pytest.raises(checkpoint.CheckpointError, match="folder .*missing does not exist"):
        create_model_2.main(["--data-dir", mnist_dir, "--checkpoint", str(tmp_path / "missing" / "m.ckpt")])


def test_largest_batch_and_seed_are_accepted(capsys):
    parser = training.training_parser("x", steps=1, batch_size=1, learning_rate=1.0, checkpoint="c", log_every=1)
    args = parser.parse_args(["--batch-size", "55000", "--seed", str(2 ** 31 - 1)])
    assert (args.batch_size, args.seed) == (55000, 2 ** 31 - 1)


def test_a_diverging_run_stops_with_the_step_and_keeps_the_previous_checkpoint(mnist_dir, tmp_path):
    old = DeepCNN(seed=1)
    prefix = checkpoint.save_checkpoint(old, tmp_path / "model2.ckpt")
    with pytest.raises(training.Diverged, match=r"training diverged at step \d+ — lower --learning-rate"):
        create_model_2.main(["--smoke", "--learning-rate", "1e6", "--data-dir", mnist_dir, "--checkpoint", prefix])
    model = DeepCNN(seed=2)
    checkpoint.restore_checkpoint(model, prefix)
    np.testing.assert_array_equal(model.w_fc1.numpy(), old.w_fc1.numpy())


def test_finish_refuses_to_save_weights_that_are_not_finite(mnist, tmp_path):
    model = SoftmaxRegression()
    model.W.assign(tf.fill([784, 10], np.inf))
    args = SimpleNamespace(steps=7, batch_size=1, checkpoint=str(tmp_path / "m.ckpt"))
    with pytest.raises(training.Diverged, match="diverged by step 7"):
        training.finish(model, model, mnist, args, 1.0, print, lambda: None)
    assert os.listdir(tmp_path) == []
