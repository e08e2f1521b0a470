"""checkpoint.py: the atomic locked save and the verified read-only restore.

Slow writes are made by wrapping tf.train.Checkpoint.write; concurrent writers
and readers are threads of this process (flock locks are per open file, so
they exclude each other exactly as two processes would).
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import checkpoint
import cli
from checkpoint import CheckpointError, restore_checkpoint, save_checkpoint
from create_model_1 import SoftmaxRegression
from create_model_2 import DeepCNN
from quiet_tensorflow import tf

FILES = ["m.ckpt.data-00000-of-00001", "m.ckpt.index", "m.ckpt.lock"]


def random_images(n, seed=0):
    return np.random.default_rng(seed).random((n, 784), dtype=np.float32)


def weights(model):
    return [v.numpy() for v in model.trainable_variables]


def same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(weights(a), weights(b)))


def restored(prefix, model_class=DeepCNN, **kwargs):
    model = model_class(seed=99)
    restore_checkpoint(model, prefix, **kwargs)
    return model


def dead_pid():
    """The id of a process that has just exited (not reused this quickly)."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


@pytest.fixture
def slow_write(monkeypatch):
    """Makes every checkpoint write take `seconds` after its files are on disk; `started` is set then."""
    real_write = tf.train.Checkpoint.write
    state = {"seconds": 0.5, "started": threading.Event()}

    def write(self, file_prefix, options=None):
        result = real_write(self, file_prefix)
        state["started"].set()
        time.sleep(state["seconds"])
        return result

    monkeypatch.setattr(tf.train.Checkpoint, "write", write)
    return state


def in_thread(function, *args):
    """Run `function(*args)` on a thread; returns the thread and a dict that receives its result or error."""
    out = {}

    def target():
        try:
            out["result"] = function(*args)
        except BaseException as e:  # noqa: BLE001 (handed to the test)
            out["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


# --- round trip ---------------------------------------------------------------------------

@pytest.mark.parametrize("model_class", [DeepCNN, SoftmaxRegression])
def test_checkpoint_round_trip_gives_identical_logits(model_class, tmp_path):
    original = model_class(seed=1)
    if model_class is SoftmaxRegression:  # zeros would round-trip trivially
        original.W.assign(tf.random.normal([784, 10], seed=1))
    prefix = save_checkpoint(original, tmp_path / "m.ckpt")
    x = random_images(16)
    np.testing.assert_array_equal(original(x).numpy(), restored(prefix, model_class)(x).numpy())


def test_save_leaves_exactly_the_checkpoint_and_its_lock(tmp_path):
    save_checkpoint(DeepCNN(seed=1), tmp_path / "m.ckpt")
    save_checkpoint(DeepCNN(seed=2), tmp_path / "m.ckpt")
    assert sorted(os.listdir(tmp_path)) == FILES


def test_restore_accepts_the_index_file_name_for_the_prefix(tmp_path):
    original = DeepCNN(seed=1)
    prefix = save_checkpoint(original, tmp_path / "m.ckpt")
    assert same_weights(restored(prefix + ".index"), original)


@pytest.mark.parametrize("folder, name", [("c[x]", "model2.ckpt"), ("a*b?", "m[1].ckpt")])
def test_glob_characters_in_folder_or_name_are_taken_literally(tmp_path, folder, name):
    (tmp_path / folder).mkdir()
    original = DeepCNN(seed=1)
    prefix = save_checkpoint(original, tmp_path / folder / name)
    assert same_weights(restored(prefix), original)


# --- what a checkpoint must be ---------------------------------------------------------------

def test_restoring_another_models_checkpoint_names_both_models(tmp_path):
    prefix = save_checkpoint(SoftmaxRegression(), tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError, match="softmax-regression.*deep-mnist-cnn"):
        restore_checkpoint(DeepCNN(), prefix)


def test_foreign_checkpoint_is_refused(tmp_path):
    prefix = tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tmp_path / "other"))
    with pytest.raises(CheckpointError, match="not a checkpoint written by this project"):
        restore_checkpoint(DeepCNN(), prefix)


def test_missing_checkpoint_says_how_to_train_it(tmp_path):
    with pytest.raises(CheckpointError, match=r"model2.ckpt not found — train it with: python create_model_2.py"):
        restore_checkpoint(DeepCNN(), tmp_path / "model2.ckpt", train_hint="python create_model_2.py")


def test_truncated_checkpoint_data_is_a_clean_error(tmp_path):
    prefix = save_checkpoint(DeepCNN(), tmp_path / "m.ckpt")
    data = prefix + ".data-00000-of-00001"
    os.truncate(data, os.path.getsize(data) // 2)
    with pytest.raises(CheckpointError, match="cannot restore"):
        restore_checkpoint(DeepCNN(), prefix)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_checkpoint_holding_nan_or_inf_is_refused_on_restore(tmp_path, value):
    model = DeepCNN(seed=1)
    model.b_fc2.assign(tf.fill([10], float(value)))
    # Written past save_checkpoint, which refuses such a model: as an older version would have.
    prefix = tf.train.Checkpoint(model=model, model_id=tf.Variable(model.MODEL_ID)).write(str(tmp_path / "m.ckpt"))
    with pytest.raises(CheckpointError, match="NaN or infinite.*b_fc2.*retrain"):
        restore_checkpoint(DeepCNN(), prefix)


def test_save_refuses_a_model_holding_nan(tmp_path):
    model = DeepCNN(seed=1)
    model.w_fc1.assign(tf.fill(model.w_fc1.shape, np.nan))
    with pytest.raises(CheckpointError, match="refusing to save.*NaN"):
        save_checkpoint(model, tmp_path / "m.ckpt")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("model_id", [3, np.arange(4, dtype=np.int64), "deep-mnist-cnn\nfake second line",
                                      "x" * 500 + "\x1b[2J"])
def test_odd_model_ids_give_one_short_printable_line(tmp_path, model_id):
    model = DeepCNN(seed=1)
    prefix = tf.train.Checkpoint(model=model, model_id=tf.Variable(model_id)).write(str(tmp_path / "m.ckpt"))
    with pytest.raises(CheckpointError) as error:
        restore_checkpoint(DeepCNN(), prefix)
    message = str(error.value)
    assert message.isprintable() and len(message) < 400


@pytest.mark.parametrize("suffix", [".index", ".data-00000-of-00001"])
def test_a_fifo_in_place_of_a_checkpoint_file_is_refused_not_waited_on(tmp_path, suffix):
    prefix = save_checkpoint(DeepCNN(seed=1), tmp_path / "m.ckpt")
    os.remove(prefix + suffix)
    os.mkfifo(prefix + suffix)
    thread, out = in_thread(restore_checkpoint, DeepCNN(), prefix)
    thread.join(timeout=20)
    assert not thread.is_alive(), "restore hung on a FIFO"
    assert isinstance(out.get("error"), CheckpointError) and "not a regular file" in str(out["error"])


# --- readers never change anything ---------------------------------------------------------------

def snapshot(folder):
    return {name: os.stat(folder / name).st_mtime_ns for name in os.listdir(folder)}


def test_restore_renames_and_deletes_nothing_even_beside_leftovers(tmp_path):
    prefix = save_checkpoint(DeepCNN(seed=1), tmp_path / "notes")
    (tmp_path / "notes.tmp-draft").write_text("the user's own file")
    pid = dead_pid()
    (tmp_path / f"notes.tmp-{pid}.index").write_bytes(b"left by a killed save")
    (tmp_path / f"notes.tmp-{pid}_temp").mkdir()
    before = snapshot(tmp_path)
    restored(prefix)
    assert snapshot(tmp_path) == before


def test_a_reader_during_a_slow_save_neither_breaks_it_nor_sees_half_of_it(tmp_path, slow_write):
    old, new = DeepCNN(seed=1), DeepCNN(seed=2)
    prefix = save_checkpoint(old, tmp_path / "m.ckpt")
    thread, out = in_thread(save_checkpoint, new, prefix)
    assert slow_write["started"].wait(30)
    reader = restored(prefix)  # waits for the save's lock, then reads the whole new checkpoint
    thread.join(timeout=30)
    assert "error" not in out
    assert same_weights(reader, old) or same_weights(reader, new)
    assert same_weights(restored(prefix), new)
    assert sorted(os.listdir(tmp_path)) == FILES


def test_a_second_writer_waits_and_the_last_writer_wins_whole(tmp_path, slow_write, capsys):
    prefix = str(tmp_path / "m.ckpt")
    first, second = DeepCNN(seed=1), DeepCNN(seed=2)
    thread1, out1 = in_thread(save_checkpoint, first, prefix)
    assert slow_write["started"].wait(30)
    slow_write["seconds"] = 0.0
    save_checkpoint(second, prefix)
    thread1.join(timeout=30)
    assert "error" not in out1
    assert "waiting for another process to finish writing" in capsys.readouterr().err
    assert same_weights(restored(prefix), second)
    assert sorted(os.listdir(tmp_path)) == FILES


# --- crashes and leftovers ------------------------------------------------------------------

def test_interrupted_save_leaves_previous_checkpoint_whole(tmp_path, monkeypatch):
    old = DeepCNN(seed=1)
    prefix = save_checkpoint(old, tmp_path / "m.ckpt")
    real_write = tf.train.Checkpoint.write

    def write_then_crash(self, file_prefix, options=None):
        real_write(self, file_prefix)
        raise RuntimeError("simulated crash right after the data hit the disk")

    monkeypatch.setattr(tf.train.Checkpoint, "write", write_then_crash)
    with pytest.raises(RuntimeError):
        save_checkpoint(DeepCNN(seed=2), prefix)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == FILES
    assert same_weights(restored(prefix), old)


def commit_then_die(tmp_path, monkeypatch, new):
    """Save `new` at tmp_path/m.ckpt but crash after its data file was renamed into place, before its index."""
    real_replace = os.replace

    def replace_once_then_die(src, dst):
        if dst.endswith(".index"):
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_once_then_die)
    with pytest.raises(CheckpointError, match="next save to it completes it"):
        save_checkpoint(new, tmp_path / "m.ckpt")
    monkeypatch.undo()
    # As if the process had died there: its files now belong to a process that no longer runs.
    pid = dead_pid()
    for name in os.listdir(tmp_path):
        if f".tmp-{os.getpid()}" in name:
            os.rename(tmp_path / name, tmp_path / name.replace(f".tmp-{os.getpid()}", f".tmp-{pid}"))
    return str(tmp_path / "m.ckpt"), pid


def test_a_save_that_died_after_its_commit_is_read_whole_and_finished_by_the_next_save(tmp_path, monkeypatch):
    save_checkpoint(DeepCNN(seed=1), tmp_path / "m.ckpt")
    new = DeepCNN(seed=2)
    prefix, pid = commit_then_die(tmp_path, monkeypatch, new)
    before = snapshot(tmp_path)
    assert same_weights(restored(prefix), new)  # the committed checkpoint, read in place
    assert snapshot(tmp_path) == before
    third = DeepCNN(seed=3)
    save_checkpoint(third, prefix)
    assert sorted(os.listdir(tmp_path)) == FILES
    assert same_weights(restored(prefix), third)


def test_recovery_never_installs_committed_files_that_do_not_read(tmp_path, monkeypatch):
    old = DeepCNN(seed=1)
    prefix = save_checkpoint(old, tmp_path / "m.ckpt")
    pid = dead_pid()
    tmp = f"{prefix}.tmp-{pid}"
    tf.train.Checkpoint(model=DeepCNN(seed=2), model_id=tf.Variable("deep-mnist-cnn")).write(tmp)
    os.truncate(tmp + ".data-00000-of-00001", 1000)
    with open(tmp + ".commit", "w") as f:
        json.dump({"files": list(checkpoint.EXPECTED)}, f)
    assert same_weights(restored(prefix), old)  # the reader falls back to the installed files
    checkpoint.recover(prefix)
    assert sorted(os.listdir(tmp_path)) == FILES
    assert same_weights(restored(prefix), old)


def test_save_removes_staging_folders_of_dead_writers_only(tmp_path):
    prefix = save_checkpoint(DeepCNN(seed=1), tmp_path / "m.ckpt")
    dead, alive = dead_pid(), os.getppid()
    for pid in (dead, alive):
        (tmp_path / f"m.ckpt.tmp-{pid}_temp").mkdir()
        (tmp_path / f"m.ckpt.tmp-{pid}_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x" * 1000)
        (tmp_path / f"m.ckpt.tmp-{pid}.index").write_bytes(b"x")
    (tmp_path / "m.ckpt.tmp-draft").write_text("not ours")
    save_checkpoint(DeepCNN(seed=2), prefix)
    assert sorted(os.listdir(tmp_path)) == sorted(
        FILES + [f"m.ckpt.tmp-{alive}_temp", f"m.ckpt.tmp-{alive}.index", "m.ckpt.tmp-draft"])


def test_disk_full_during_the_save_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    old = DeepCNN(seed=1)
    prefix = save_checkpoint(old, tmp_path / "m.ckpt")

    def fill_the_disk(self, file_prefix, options=None):
        os.mkdir(file_prefix + "_temp")
        (tmp_path / (os.path.basename(file_prefix) + "_temp") / "part").write_bytes(b"x" * 4096)
        raise tf.errors.ResourceExhaustedError(None, None, f"{file_prefix}_temp/part; No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "write", fill_the_disk)
    with pytest.raises(CheckpointError, match="no space left on the device .* previous checkpoint is unchanged"):
        save_checkpoint(DeepCNN(seed=2), prefix)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == FILES
    assert same_weights(restored(prefix), old)


# --- Ctrl-C during a save ---------------------------------------------------------------------

def test_ctrl_c_during_the_write_cancels_the_save(tmp_path, monkeypatch):
    old = DeepCNN(seed=1)
    prefix = save_checkpoint(old, tmp_path / "m.ckpt")
    real_write = tf.train.Checkpoint.write

    def write_with_ctrl_c(self, file_prefix, options=None):
        os.kill(os.getpid(), signal.SIGINT)
        return real_write(self, file_prefix)

    monkeypatch.setattr(tf.train.Checkpoint, "write", write_with_ctrl_c)
    with pytest.raises(KeyboardInterrupt) as error:
        save_checkpoint(DeepCNN(seed=2), prefix)
    assert not isinstance(error.value, cli.Interrupted)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == FILES
    assert same_weights(restored(prefix), old)


def test_ctrl_c_during_the_renames_completes_the_save_and_says_so(tmp_path, monkeypatch):
    prefix = save_checkpoint(DeepCNN(seed=1), tmp_path / "m.ckpt")
    new = DeepCNN(seed=2)
    real_replace = os.replace

    def replace_with_ctrl_c(src, dst):
        os.kill(os.getpid(), signal.SIGINT)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_with_ctrl_c)
    with pytest.raises(cli.Interrupted, match="was written whole"):
        save_checkpoint(new, prefix)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == FILES
    assert same_weights(restored(prefix), new)


# --- extras saved beside the model -------------------------------------------------------------

class Stats(tf.Module):
    def __init__(self, value):
        super().__init__()
        self.mean = tf.Variable(tf.fill([10, 4], float(value)))


def test_extras_are_saved_with_the_model_and_restored_when_asked(tmp_path):
    prefix = save_checkpoint(DeepCNN(seed=1), tmp_path / "m.ckpt", extras={"stats": Stats(2.5)})
    stats = Stats(0.0)
    found = restore_checkpoint(DeepCNN(), prefix, optional={"stats": stats})
    assert found == {"stats"}
    np.testing.assert_array_equal(stats.mean.numpy(), np.full([10, 4], 2.5, np.float32))
    assert restore_checkpoint(DeepCNN(), prefix) == frozenset()  # a reader that does not ask still reads it


def test_a_checkpoint_without_the_optional_extras_still_restores(tmp_path):
    original = DeepCNN(seed=1)
    prefix = save_checkpoint(original, tmp_path / "m.ckpt")
    model, stats = DeepCNN(), Stats(7.0)
    assert restore_checkpoint(model, prefix, optional={"stats": stats}) == frozenset()
    assert same_weights(model, original)
    np.testing.assert_array_equal(stats.mean.numpy(), np.full([10, 4], 7.0, np.float32))


def test_a_model_variable_missing_from_the_checkpoint_is_refused(tmp_path):
    partial = tf.Module()
    partial.w_conv1 = tf.Variable(tf.zeros([5, 5, 1, 32]))
    prefix = tf.train.Checkpoint(model=partial, model_id=tf.Variable("deep-mnist-cnn")).write(str(tmp_path / "m"))
    with pytest.raises(CheckpointError, match="cannot restore"):
        restore_checkpoint(DeepCNN(), prefix)


@pytest.mark.slow
def test_kill_9_at_random_moments_of_training_runs_never_leaves_a_broken_checkpoint(mnist_dir, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefix = str(tmp_path / "model.ckpt")
    command = [sys.executable, os.path.join(root, "create_model_1.py"), "--steps", "30", "--data-dir", mnist_dir,
               "--checkpoint", prefix]
    subprocess.run(command + ["--seed", "0"], check=True, capture_output=True, timeout=120)
    start = time.perf_counter()
    subprocess.run(command + ["--seed", "1"], check=True, capture_output=True, timeout=120)
    lifetime = time.perf_counter() - start
    rng = np.random.default_rng(0)
    for trial in range(12):
        proc = subprocess.Popen(command + ["--seed", str(trial)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 1.1) * lifetime)  # most often around the save, at the end
        proc.kill()
        proc.wait()
        restored(prefix, SoftmaxRegression)  # whole: the old checkpoint or the new one
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt.data-00000-of-00001", "model.ckpt.index", "model.ckpt.lock"]


@pytest.mark.slow
def test_two_trainings_saving_to_one_prefix_at_once_leave_one_whole_checkpoint(mnist_dir, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefix = str(tmp_path / "model.ckpt")
    procs = [subprocess.Popen([sys.executable, os.path.join(root, "create_model_1.py"), "--steps", "50",
                               "--seed", str(seed), "--data-dir", mnist_dir, "--checkpoint", prefix],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "checkpoint written" in out
    restored(prefix, SoftmaxRegression)
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt.data-00000-of-00001", "model.ckpt.index", "model.ckpt.lock"]
