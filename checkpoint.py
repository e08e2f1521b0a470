"""Checkpoints that are saved atomically under a lock and restored read-only, verified.

A checkpoint is a prefix: `model2.ckpt` is the files `model2.ckpt.index` and
`model2.ckpt.data-00000-of-00001`. Beside them live `model2.ckpt.lock` (the
writers' lock) and, only while a save runs or after one was killed,
`model2.ckpt.tmp-PID.*` files.

The save (`save_checkpoint`), holding an exclusive `flock` on the lock file:

1. finishes or discards what a killed writer left (`recover`);
2. writes the checkpoint as `PREFIX.tmp-PID` (TensorFlow stages it in
   `PREFIX.tmp-PID_temp/`), checks that exactly the expected `.index` and
   `.data-00000-of-00001` appeared and read back whole, and fsyncs them and
   the folder;
3. commits: writes and fsyncs the marker `PREFIX.tmp-PID.commit`, which lists
   those files;
4. renames them into place, data first and index last, fsyncs the folder,
   removes the marker.

A crash before 3 leaves the old checkpoint; after 3 the new one is complete on
disk, and the next save installs it (after reading it back: files that do not
read are discarded, never installed). A second save to the same prefix waits
for the lock, so the last writer wins whole.

The restore (`restore_checkpoint`) never renames or deletes anything. Under a
shared lock it opens the files of the newest complete checkpoint (a committed
but unfinished save if a writer died after step 3, else the installed files),
then reads those open files through /proc/self/fd (so a concurrent save cannot
swap a file half-way, and a folder named `c[x]` is not taken for a pattern),
and checks: only regular files (a FIFO would block), the model it was written
for, every model variable present, every value finite.
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time

import numpy as np

import cli
import leftovers
from quiet_tensorflow import tf

INDEX = ".index"
DATA = ".data-00000-of-00001"  # the one shard a single-process save writes
EXPECTED = (DATA, INDEX)  # also the order of installation: the index is what makes a prefix readable
ID_NAME = "model_id"  # the variable that names the model inside every checkpoint this project writes
_ID_KEY = f"{ID_NAME}/.ATTRIBUTES/VARIABLE_VALUE"
INDEX_LIMIT = 16 << 20  # bytes; this project's indexes are ≈ 1 KB, so anything near this is not ours
READ_WAIT = 60  # seconds a reader waits for a save in progress (a save of model 2 takes ≈ 1 s)
_POLL = 0.05  # seconds between lock attempts
# Where a process sees its open files as paths: Linux; /dev/fd elsewhere (macOS, the BSDs).
_FD_FOLDER = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
# What TensorFlow's checkpoint reader raises for a damaged file (a short read is an IndexError).
_READ_ERRORS = (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError, TypeError)


class CheckpointError(cli.UserError):
    """A checkpoint is missing, unreadable, not finite, holds another model, or cannot be written."""


def _strip_suffix(prefix):
    for suffix in (INDEX, DATA):
        if prefix.endswith(suffix):
            return prefix[: -len(suffix)]
    return prefix


def _tmp_pattern(base):
    """Names a writer of `base` creates: base.tmp-PID.index / .data-… / .commit, and TF's base.tmp-PID_temp/."""
    return leftovers.pid_pattern(f"{base}.tmp-", r"(?P<what>\.index|\.data-\d{5}-of-\d{5}|\.commit|_temp)")


def _fsync(path):
    """Force a file's content, or a folder's entries (renames), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(prefix):
    """Fail at once, not after training, when the checkpoint cannot be written at `prefix`.

    Args:
        prefix: checkpoint prefix.

    Raises:
        CheckpointError: its folder is missing or not writable.
    """
    directory = os.path.dirname(os.path.abspath(prefix))
    shown = cli.one_line(os.fspath(prefix))
    if not os.path.isdir(directory):
        raise CheckpointError(f"cannot write checkpoint {shown}: folder {cli.one_line(directory)} does not exist")
    if not os.access(directory, os.W_OK):
        raise CheckpointError(f"cannot write checkpoint {shown}: folder {cli.one_line(directory)} is not writable")


# --- locks -------------------------------------------------------------------------------

@contextlib.contextmanager
def _writer_lock(prefix, shown, check_interrupt):
    """Hold an exclusive flock on PREFIX.lock; say so once if another writer has it, and wait."""
    try:
        fd = os.open(prefix + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {shown}: cannot open its lock file ({e.strerror})") from None
    try:
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    print(f"waiting for another process to finish writing {shown} …", file=sys.stderr, flush=True)
                    said = True
                check_interrupt()
                time.sleep(_POLL)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _reader_lock(prefix, shown):
    """Hold a shared flock on PREFIX.lock if it exists (a reader never creates it): no save commits meanwhile."""
    try:
        fd = os.open(prefix + ".lock", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # no lock file: no writer of this version has touched the prefix
        yield
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            deadline = time.monotonic() + READ_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise CheckpointError(f"{shown} has been being written by another process for over "
                                              f"{READ_WAIT} s — try again when that training has finished") from None
                    time.sleep(_POLL)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _ctrl_c_held():
    """Record Ctrl-C instead of raising it: raised inside TensorFlow's write it was once swallowed.

    Yields:
        A list that is non-empty once Ctrl-C was pressed.
    """
    pressed = []
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(True))
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


# --- which files make the checkpoint -----------------------------------------------------

def _read_marker(path):
    """The suffixes a commit marker lists, or None if it is not a complete marker of this version."""
    try:
        with open(path, "rb") as f:
            content = json.loads(f.read(4096))
    except (OSError, ValueError):
        return None
    files = content.get("files") if isinstance(content, dict) else None
    return tuple(files) if isinstance(files, list) and sorted(files) == sorted(EXPECTED) else None


def _pending_saves(prefix):
    """Committed saves whose writer died before finishing its renames, newest first.

    Returns:
        A list of (marker path, tmp prefix, {suffix: path}); each suffix's file is
        still at its temporary name, or already renamed into place.
    """
    directory, base = os.path.split(prefix)
    pattern = _tmp_pattern(base)
    found = []
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            match = pattern.fullmatch(name)
            if not match or match.group("what") != ".commit":
                continue
            pid = int(match.group("pid"))
            if pid == os.getpid() or leftovers.process_is_running(pid):
                continue
            marker = os.path.join(directory, name)
            suffixes = _read_marker(marker)
            if suffixes is None:
                continue
            tmp = marker[: -len(".commit")]
            files = {s: tmp + s if os.path.lexists(tmp + s) else prefix + s for s in suffixes}
            found.append((os.path.getmtime(marker), marker, tmp, files))
    return [(marker, tmp, files) for _, marker, tmp, files in sorted(found, reverse=True)]


def _installed(prefix):
    """The installed files of `prefix`: {suffix: path} for the index and every data shard."""
    directory, base = os.path.split(prefix)
    shard = re.compile(re.escape(base) + r"(\.data-\d{5}-of-\d{5})")
    files = {INDEX: prefix + INDEX}
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            match = shard.fullmatch(name)
            if match:
                files[match.group(1)] = os.path.join(directory, name)
    return files


def _open_regular(path, shown):
    """A read-only descriptor of `path`, which must be a regular file (a FIFO would block every read)."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise CheckpointError(f"{shown}: {cli.one_line(os.path.basename(path))} is not a regular file — "
                              f"give the prefix of a checkpoint written by the create_model scripts")
    if path.endswith(INDEX) and info.st_size > INDEX_LIMIT:
        os.close(fd)
        raise CheckpointError(f"{shown}: {cli.one_line(os.path.basename(path))} is {info.st_size:,} bytes, "
                              f"not a checkpoint index of this project")
    return fd


class _Opened:
    """A set of checkpoint files held open, readable by TensorFlow as one prefix of their own."""

    def __init__(self, files, shown):
        self.fds = {}
        try:
            for suffix, path in files.items():
                self.fds[suffix] = _open_regular(path, shown)
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def prefix(self):
        """A prefix in a private folder whose files are links to the open descriptors.

        TensorFlow then reads exactly the files opened under the lock, whatever is
        renamed meanwhile, and its reader never sees the user's folder name (which
        it would expand as a glob pattern).
        """
        folder = tempfile.mkdtemp(prefix="checkpoint-read-")
        try:
            for suffix, fd in self.fds.items():
                os.symlink(f"{_FD_FOLDER}/{fd}", os.path.join(folder, "ckpt" + suffix))
            yield os.path.join(folder, "ckpt")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self):
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = {}


def _first_line(error):
    text = str(error).strip()
    return cli.one_line(text.splitlines()[0] if text else type(error).__name__)


def non_finite_variable(variables):
    """The name of the first floating-point variable holding NaN or ±inf, else None.

    Args:
        variables: tf.Variables.

    Returns:
        str or None.
    """
    for v in variables:
        if v.dtype.is_floating and not np.isfinite(v.numpy()).all():
            return v.name
    return None


def _reads_whole(opened):
    """Whether every tensor of an opened checkpoint reads (checksums pass) and every float is finite."""
    try:
        with opened.prefix() as pinned:
            reader = tf.train.load_checkpoint(pinned)
            for name in reader.get_variable_to_shape_map():
                value = np.asarray(reader.get_tensor(name))
                if value.dtype.kind == "f" and not np.isfinite(value).all():
                    return False
    except _READ_ERRORS:
        return False
    return True


# --- save --------------------------------------------------------------------------------

def _install(prefix, tmp, suffixes):
    """Rename a committed save's files into place and drop its marker (step 4 of the save)."""
    directory, base = os.path.split(prefix)
    for suffix in sorted(suffixes, key=lambda s: s == INDEX):
        if os.path.lexists(tmp + suffix):
            os.replace(tmp + suffix, prefix + suffix)
    # Shards of an older checkpoint with another layout must not linger beside the new index.
    shard = re.compile(re.escape(base) + r"(\.data-\d{5}-of-\d{5})")
    for name in os.listdir(directory):
        match = shard.fullmatch(name)
        if match and match.group(1) not in suffixes:
            os.remove(os.path.join(directory, name))
    _fsync(directory)
    os.remove(tmp + ".commit")
    _fsync(directory)


def _discard(tmp):
    """Remove this process's temporary files of an uncommitted save."""
    for path in [tmp + s for s in (*EXPECTED, ".commit")]:
        with contextlib.suppress(OSError):
            os.remove(path)
    shutil.rmtree(tmp + "_temp", ignore_errors=True)


def recover(prefix):
    """Finish what killed writers left at `prefix`; call only while holding the writer's lock.

    A committed save is installed if its files read back whole, else dropped;
    then temporary files and TensorFlow staging folders of processes that no
    longer run are removed. Nothing else is touched (`notes.tmp-draft` stays).

    Args:
        prefix: absolute checkpoint prefix.
    """
    directory, base = os.path.split(prefix)
    for marker, tmp, files in _pending_saves(prefix):
        try:
            opened = _Opened(files, base)
        except (OSError, CheckpointError):
            opened = None
        try:
            good = opened is not None and _reads_whole(opened)
        finally:
            if opened is not None:
                opened.close()
        if good:
            _install(prefix, tmp, tuple(files))
        else:
            with contextlib.suppress(OSError):
                os.remove(marker)
    leftovers.remove_dead_owners(directory, _tmp_pattern(base))


def save_checkpoint(model, prefix, extras=None):
    """Write `model`'s variables (and `extras`) at checkpoint `prefix`, atomically, under the writers' lock.

    The files that appear are `PREFIX.index` and `PREFIX.data-00000-of-00001`
    (and `PREFIX.lock`, kept); the checkpoint is restored by its prefix. An
    interrupted or failed save leaves the previous checkpoint at `prefix`
    untouched. Ctrl-C during the save is held until a safe point: before the
    commit it cancels the save; after it, the save completes and then
    cli.Interrupted says that the checkpoint was written.

    Args:
        model: a tf.Module with a string attribute MODEL_ID.
        prefix: checkpoint path prefix, e.g. "model2.ckpt".
        extras: {name: trackable} saved beside the model in the same checkpoint
            (e.g. statistics fitted after training), restored with
            `restore_checkpoint(..., optional=...)`.

    Returns:
        The absolute prefix written.

    Raises:
        CheckpointError: the folder is not writable, the disk is full, a value
            is NaN or infinite, or the written files do not read back.
        KeyboardInterrupt: Ctrl-C before the commit (nothing was written).
        cli.Interrupted: Ctrl-C after the commit (the checkpoint was written).
    """
    shown = cli.one_line(os.fspath(prefix))
    prefix = os.path.abspath(os.fspath(prefix))
    extras = dict(extras or {})
    if {"model", ID_NAME} & set(extras):
        raise ValueError(f"extras may not be called 'model' or '{ID_NAME}'")
    check_writable(prefix)
    bad = non_finite_variable([*model.variables, *(v for x in extras.values() for v in x.variables)])
    if bad:
        raise CheckpointError(f"refusing to save {shown}: {cli.one_line(bad)} holds NaN or infinite values")
    root = tf.train.Checkpoint(model=model, **{ID_NAME: tf.Variable(model.MODEL_ID, trainable=False)}, **extras)
    directory = os.path.dirname(prefix)
    tmp = f"{prefix}.tmp-{os.getpid()}"

    with _ctrl_c_held() as pressed:
        def check_interrupt():
            if pressed:
                raise KeyboardInterrupt

        with _writer_lock(prefix, shown, check_interrupt):
            committed = False
            try:
                recover(prefix)
                check_interrupt()
                root.write(tmp)
                check_interrupt()
                written = sorted(name[len(os.path.basename(tmp)):] for name in os.listdir(directory)
                                 if name.startswith(os.path.basename(tmp) + "."))
                if written != sorted(EXPECTED):
                    raise CheckpointError(f"cannot write checkpoint {shown}: TensorFlow wrote {written}, "
                                          f"expected {sorted(EXPECTED)}")
                for suffix in EXPECTED:
                    _fsync(tmp + suffix)
                opened = _Opened({s: tmp + s for s in EXPECTED}, shown)
                try:
                    if not _reads_whole(opened):
                        raise CheckpointError(f"cannot write checkpoint {shown}: the written files do not read "
                                              f"back — check the disk; the previous checkpoint is unchanged")
                finally:
                    opened.close()
                _fsync(directory)
                check_interrupt()
                # The commit: from here on the new checkpoint is the one on disk.
                fd = os.open(tmp + ".commit", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                try:
                    os.write(fd, json.dumps({"files": list(EXPECTED)}).encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
                _fsync(directory)
                committed = True
                _install(prefix, tmp, EXPECTED)
            except (tf.errors.OpError, OSError) as e:
                if not committed:
                    _discard(tmp)
                    raise CheckpointError(f"cannot write checkpoint {shown}: {_why(e)}; "
                                          f"the previous checkpoint is unchanged") from None
                raise CheckpointError(f"checkpoint {shown} was written but not all of it renamed into place "
                                      f"({_why(e)}); the next save to it completes it") from None
            except BaseException:
                if not committed:
                    _discard(tmp)
                raise
    if pressed:
        raise cli.Interrupted(f"the new checkpoint {shown} was written whole before it stopped")
    return prefix


def _why(error):
    """A disk-full or permission error in the user's words, anything else as its first line."""
    text = _first_line(error)
    if isinstance(error, tf.errors.ResourceExhaustedError) or "No space left" in text or \
            getattr(error, "errno", None) == errno.ENOSPC:
        return "no space left on the device — free some space and train again"
    return getattr(error, "strerror", None) or text


# --- restore -----------------------------------------------------------------------------

def _model_id(value, shown):
    """The model name stored in a checkpoint, checked to be a string and made safe to print."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if not isinstance(value, bytes):
        raise CheckpointError(f"{shown} is not a checkpoint written by this project's create_model scripts "
                              f"(its {ID_NAME} is not a string)")
    return cli.one_line(value, 60)


def _restore_from(opened, model, optional, shown):
    with opened.prefix() as pinned:
        names = dict(tf.train.list_variables(pinned))
        if _ID_KEY not in names:
            raise CheckpointError(f"{shown} is not a checkpoint written by this project's create_model scripts")
        found = _model_id(tf.train.load_variable(pinned, _ID_KEY), shown)
        if found != model.MODEL_ID:
            raise CheckpointError(f"{shown} holds the {found} model, not the {model.MODEL_ID} model this script needs")
        present = {name for name in optional if any(key.startswith(name + "/") for key in names)}
        status = tf.train.Checkpoint(model=model, **{name: optional[name] for name in present}).read(pinned)
        status.assert_existing_objects_matched()  # every variable of the model (and extras) was in the file
        status.expect_partial()  # the model_id, and extras nobody asked for, are not restored into anything
    bad = non_finite_variable([*model.variables, *(v for name in present for v in optional[name].variables)])
    if bad:
        raise CheckpointError(f"{shown} holds NaN or infinite values (in {cli.one_line(bad)}) — it comes from "
                              f"a training run that diverged; retrain it with a lower --learning-rate")
    return frozenset(present)


def restore_checkpoint(model, prefix, train_hint=None, optional=None):
    """Load a checkpoint written by `save_checkpoint` into `model`, verifying it completely.

    Reads only: nothing at `prefix` is renamed, created or deleted.

    Args:
        model: the freshly built tf.Module to fill; its MODEL_ID must match the checkpoint's.
        prefix: checkpoint prefix (the path without `.index`); a path to the
            `.index` or `.data-…` file is accepted too.
        train_hint: the command that creates this checkpoint, quoted when it is missing.
        optional: {name: trackable} restored too when the checkpoint holds them
            (saved as `extras`); checkpoints without them still restore.

    Returns:
        frozenset of the `optional` names that were found and restored.

    Raises:
        CheckpointError: missing, unreadable, truncated, not a regular file,
            foreign, another model's, or holding NaN or infinite values.
    """
    prefix = _strip_suffix(os.fspath(prefix))
    shown = cli.one_line(prefix)
    absolute = os.path.abspath(prefix)
    optional = dict(optional or {})
    candidates = []
    try:
        with _reader_lock(absolute, shown):
            for _, _, files in _pending_saves(absolute):
                with contextlib.suppress(OSError, CheckpointError):
                    candidates.append(_Opened(files, shown))
            try:
                candidates.append(_Opened(_installed(absolute), shown))
            except FileNotFoundError:
                if not candidates:
                    hint = f" — train it with: {train_hint}" if train_hint else ""
                    raise CheckpointError(f"{shown} not found{hint}") from None
            except OSError as e:
                if not candidates:
                    raise CheckpointError(f"cannot read {shown}: {e.strerror}") from None
        for i, opened in enumerate(candidates):
            try:
                return _restore_from(opened, model, optional, shown)
            except CheckpointError:
                if i == len(candidates) - 1:
                    raise
            except _READ_ERRORS as e:
                if i == len(candidates) - 1:
                    raise CheckpointError(f"cannot restore {shown}: {_first_line(e)[:200]} — retrain it") from None
    finally:
        for opened in candidates:
            opened.close()
