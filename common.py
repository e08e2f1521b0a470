"""Transitional: the names that used to live here, re-exported from their new homes.

    checkpoint.py        save_checkpoint, restore_checkpoint, check_writable, CheckpointError
    cli.py               UserError, run, end_process, positive_int, positive_float, one_line
    training.py          Adam, evaluate, training_parser, load_data, finish, format_seconds
    quiet_tensorflow.py  tf

Import from those modules; this file goes once nothing imports it.
"""

from checkpoint import CheckpointError, check_writable, restore_checkpoint, save_checkpoint  # noqa: F401
from cli import UserError, end_process, one_line, positive_float, positive_int, run  # noqa: F401
from quiet_tensorflow import tf  # noqa: F401
from training import Adam, evaluate, finish, format_seconds, load_data, training_parser  # noqa: F401
