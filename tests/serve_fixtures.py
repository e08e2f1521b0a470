"""The running web server that tests/test_serve.py and tests/test_browser.py share (a pytest plugin).

Both test files name this module in `pytest_plugins`, so its session fixtures exist once and the
model behind the server is trained once per session, whichever of the files run.
"""

import contextlib
import threading

import pytest

import predict
import serve
from create_model_2 import DeepCNN


@pytest.fixture(scope="session")
def served_checkpoint(model2_ckpt):
    """The suite's 300-step CNN (conftest.model2_ckpt): the server's model in these tests."""
    return model2_ckpt


@pytest.fixture(scope="session")
def served_classifier(served_checkpoint):
    """A predict.Classifier over `served_checkpoint`, as `predict_2.py --serve` builds it."""
    # A checkpoint without the "not a digit" threshold still predicts; the warning is not this test's business.
    return predict.load_classifier(DeepCNN, served_checkpoint, "create_model_2.py", warn=lambda line: None)


@contextlib.contextmanager
def serving(classifier, **options):
    """A serve.Server on a free port of 127.0.0.1, serving on a thread while the block runs.

    Args:
        classifier: a predict.Classifier.
        **options: more keyword arguments of serve.Server (accept_all).

    Yields:
        The server; `.url` is its address.
    """
    with serve.Server(classifier, "127.0.0.1", 0, **options) as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        try:
            yield running
        finally:
            running.shutdown()
            thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(served_classifier):
    """The server over `served_classifier`, for the whole session."""
    with serving(served_classifier) as running:
        yield running
