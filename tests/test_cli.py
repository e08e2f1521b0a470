"""How the commands start, talk and end: one-line errors, Ctrl-C, closed stdout, a quiet start-up.

The whole-process tests here are the few that need a real process (a signal
during `import tensorflow`, a pipe closed by its reader, the stderr of a fresh
start); each costs one TensorFlow start-up, ≈ 3 s.
"""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import checkpoint
import cli
import notadigit
import quiet_tensorflow
from create_model_2 import DeepCNN

ROOT = Path(__file__).resolve().parent.parent


def script(name, *args, **kwargs):
    return subprocess.Popen([sys.executable, str(ROOT / name), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module")
def untrained_model2(tmp_path_factory):
    """A model-2 checkpoint of an untrained network, with what training saves beside it (its "not a
    digit" threshold, here 0): enough to run predict_2.py end to end."""
    return checkpoint.save_checkpoint(DeepCNN(seed=0), tmp_path_factory.mktemp("untrained") / "model2.ckpt",
                                      extras={notadigit.DigitScore.NAME: notadigit.DigitScore()})


def test_one_line_makes_control_characters_harmless_and_cuts_long_text():
    assert cli.one_line("a\nb\x1b[2Jc") == "a?b?[2Jc"
    assert cli.one_line(b"caf\xc3\xa9 \xff") == "café \ufffd"
    assert len(cli.one_line("x" * 1000, 50)) == 50


def test_output_keeps_going_after_stdout_breaks(monkeypatch):
    class Broken(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise OSError("no descriptor")

    monkeypatch.setattr(sys, "stdout", Broken())
    say = cli.Output()
    say("first")  # must not raise
    say("second")
    assert say.broken


def test_tensorflows_known_startup_lines_are_dropped_and_anything_else_kept():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795599481.275101    6365 port.cc:153] oneDNN custom operations are on. You may see "
            "slightly different numerical results.\n"
            "I0000 00:00:1795599481.275388    6365 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
            "GPU will not be used.\n"
            "E0000 00:00:1795599482.727572    6365 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
            "Failed call to cuInit: UNKNOWN ERROR (303)\n"
            "E0000 00:00:1795599482.727572    6365 something.cc:1] a real error\n"
            "Traceback (most recent call last):\n")
    assert quiet_tensorflow.drop_startup_lines(text) == (
        "E0000 00:00:1795599482.727572    6365 something.cc:1] a real error\nTraceback (most recent call last):\n")


def test_a_fresh_predict_prints_the_digit_and_nothing_on_stderr(untrained_model2, tmp_path):
    proc = script("predict_2.py", "--checkpoint", untrained_model2, str(ROOT / "images" / "3_photo.jpg"), cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert err == ""
    assert len(out.splitlines()) == 1 and out.strip().isdigit()


def wait_until_tensorflow_loads(proc, timeout=60):
    """Return once the process has mapped TensorFlow's libraries: it is inside `import tensorflow`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with open(f"/proc/{proc.pid}/maps") as maps:
            if "tensorflow" in maps.read():
                return
        time.sleep(0.01)
    raise AssertionError("TensorFlow was never loaded")


@pytest.mark.parametrize("name, delay, line", [
    ("predict_2.py", 0.0, "predict_2.py: interrupted"),
    ("predict_2.py", 0.8, "predict_2.py: interrupted"),
    ("create_model_2.py", 0.3, "create_model_2.py: interrupted — nothing was written"),
])
def test_ctrl_c_while_tensorflow_is_imported_is_one_line(name, delay, line, tmp_path):
    proc = script(name, "--checkpoint", str(tmp_path / "never.ckpt"), str(ROOT / "images" / "3_photo.jpg")
                  if name.startswith("predict") else "--smoke", cwd=tmp_path)
    wait_until_tensorflow_loads(proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, line + "\n")
    assert os.listdir(tmp_path) == []


def test_training_piped_into_head_still_saves(mnist_dir, tmp_path):
    proc = script("create_model_1.py", "--steps", "300", "--log-every", "1", "--data-dir", mnist_dir,
                  "--checkpoint", str(tmp_path / "model.ckpt"), cwd=tmp_path)
    assert proc.stdout.readline().startswith("step 1,")
    proc.stdout.close()  # what `| head -1` does once it has its line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt.data-00000-of-00001", "model.ckpt.index", "model.ckpt.lock"]


def test_ctrl_c_while_the_process_ends_is_ignored(tmp_path):
    code = ("import os, signal, sys, time, cli\n"
            "class SlowStdout:\n"
            "    def write(self, text): return len(text)\n"
            "    def flush(self):  # Ctrl-C arrives while the last output is flushed\n"
            "        os.kill(os.getpid(), signal.SIGINT); time.sleep(0.2)\n"
            "sys.stdout = SlowStdout()\n"
            "cli.end_process(0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")


def run_and_get_exit_code(main, monkeypatch):
    codes = []
    monkeypatch.setattr(cli, "end_process", codes.append)  # instead of os._exit
    monkeypatch.setattr(cli, "_stdout_to_nowhere", lambda: None)  # leave pytest's capture alone
    cli.run(main)
    return codes[0]


def test_output_to_a_reader_that_went_away_ends_quietly(monkeypatch, capsys):
    def main():
        raise BrokenPipeError(32, "Broken pipe")

    assert run_and_get_exit_code(main, monkeypatch) == 128 + signal.SIGPIPE
    assert capsys.readouterr().err == ""


def test_output_to_a_full_disk_is_one_line(monkeypatch, capsys):
    def main():
        raise OSError(28, "No space left on device")

    assert run_and_get_exit_code(main, monkeypatch) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(": error: cannot write: No space left on device — free some space\n")


@pytest.mark.parametrize("error, line", [(cli.UserError("bad\nthing"), "error: bad?thing"),
                                         (KeyboardInterrupt(), "interrupted — nothing was written"),
                                         (cli.Interrupted("the checkpoint was written"),
                                          "interrupted — the checkpoint was written")])
def test_run_turns_errors_and_ctrl_c_into_one_line(monkeypatch, capsys, error, line):
    def main():
        raise error

    code = run_and_get_exit_code(main, monkeypatch)
    err = capsys.readouterr().err
    assert code in (1, 130) and err.count("\n") == 1 and err.rstrip("\n").endswith(line)
