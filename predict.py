"""The command line of predict_1.py and predict_2.py: images in, digits out.

Both scripts differ only in the model they restore, which they import from
their create script; everything else (reading images, batching, output) is here.
`read_images` and `record` are also what the web server answers with.
Reading a number (where to cut it) is readnumber.py's job; this file only
batches the network calls and formats the answers.
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import checkpoint
import cli
import imageprepare
import notadigit
import readnumber
from quiet_tensorflow import tf

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
BATCH = 256  # images per network call: large enough to amortise the call, small enough for memory


def build_parser(prog, checkpoint, create_script):
    p = argparse.ArgumentParser(
        prog=prog,
        description=f"Print the digit (or whole number) written in each image, read by the model "
                    f"that {create_script} trained.")
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="image files (PNG, JPEG, GIF, BMP, WebP, TIFF) or folders of them")
    p.add_argument("--checkpoint", default=checkpoint,
                   help="checkpoint prefix to restore (default: %(default)s in the current directory)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line and image instead of text")
    p.add_argument("--single", action="store_true",
                   help="read each image as one digit, even if it looks like several")
    p.add_argument("--accept-all", action="store_true",
                   help="never answer \"not a digit\": give the network's best digit for any ink "
                        "(default: refuse what looks like no digit)")
    p.add_argument("--save-prepared", metavar="DIR",
                   help="write the 28×28 input the network saw for each digit (and a 10× enlargement) into DIR")
    p.add_argument("--serve", action="store_true",
                   help="instead of reading IMAGE files, serve a draw-a-digit page and an HTTP API (see serve.py)")
    p.add_argument("--host", default="127.0.0.1",
                   help="with --serve: the address to listen on; 0.0.0.0 lets other machines in "
                        "(default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000,
                   help="with --serve: the TCP port; 0 picks a free one (default: %(default)s)")
    return p


def expand(paths):
    """The image files to read: files as given, and the image files inside any folder given (sorted).

    Args:
        paths: what the user named on the command line.

    Returns:
        (files, problems): the paths to read, and (folder, message) for each
        folder that cannot be listed or holds no image file.
    """
    files, problems = [], []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        try:
            found = [str(c) for c in sorted(Path(path).iterdir())
                     if c.suffix.lower() in IMAGE_SUFFIXES and c.is_file()]
        except OSError as e:
            problems.append((path, f"cannot read folder {shown(path)}: {e.strerror or e}"))
            continue
        if not found:
            problems.append((path, f"no image files (PNG, JPEG, GIF, BMP, WebP, TIFF) in folder {shown(path)}"))
        files.extend(found)
    return files, problems


def shown(path):
    """A path as it can be printed on one line of any terminal.

    Bytes that are not UTF-8 (kept by Python as lone surrogates) become `\\xNN`,
    and control characters (a newline in a file name) their escapes, so a name
    can neither crash a strict UTF-8 stdout nor split an output line.
    """
    out = []
    for c in str(path):
        if 0xDC80 <= ord(c) <= 0xDCFF:
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        elif c.isprintable():
            out.append(c)
        else:
            out.append(c.encode("unicode_escape").decode("ascii"))
    return "".join(out)


class Classifier:
    """A restored model as the readers use it: prepared 28×28 inputs → (probabilities, digitness).

    Args:
        model: the restored tf.Module (N×784 → N×10 logits).
        digit_score: its notadigit.DigitScore, or None for a checkpoint saved
            without one (then every input counts as a digit).
    """

    def __init__(self, model, digit_score=None):
        self.model, self.digit_score = model, digit_score

    def __call__(self, arrays):
        """Classify K prepared inputs in batches of BATCH.

        Args:
            arrays: (K, 28, 28) float32, ink = 1.

        Returns:
            (probs, digitness): (K, 10) float32 softmax and (K,) float32 in (0, 1],
            how much each input looks like a digit (below 0.5: not a digit).
        """
        arrays = np.asarray(arrays, np.float32).reshape(-1, 784)
        logits = [self.model(tf.constant(arrays[s:s + BATCH])).numpy() for s in range(0, len(arrays), BATCH)]
        logits = np.concatenate(logits) if logits else np.zeros((0, 10), np.float32)
        probs = tf.nn.softmax(logits).numpy()
        if self.digit_score is None:
            return probs, np.ones(len(probs), np.float32)
        return probs, self.digit_score.digitness(logits)


def load_classifier(model_class, prefix, create_script, warn):
    """Restore a model and its "not a digit" threshold from checkpoint `prefix`.

    Args:
        model_class: the model's tf.Module class.
        prefix: the checkpoint prefix.
        create_script: the script that trains it, named when the checkpoint is missing.
        warn: called with one line when the checkpoint has no threshold (it still predicts).

    Returns:
        Classifier.
    """
    model, score = model_class(), notadigit.DigitScore()
    found = checkpoint.restore_checkpoint(model, prefix, train_hint=f"python {create_script}",
                                          optional={score.NAME: score})
    if score.NAME not in found:
        warn(f"{cli.one_line(prefix)} has no \"not a digit\" threshold (trained before it existed), so no "
             f"image is refused — retrain with {create_script} to get refusals")
        score = None
    return Classifier(model, score)


def read_images(sources, classify, *, single=False, accept_all=False):
    """Read the digit or number in each source, classifying every candidate of every image together.

    Args:
        sources: paths or PIL images.
        classify: a Classifier (or any function of the same shape).
        single: read each image as one digit.
        accept_all: never read the ink as "not a digit" (readnumber.decode's
            not_a_number off; record() then refuses no piece either).

    Returns:
        One entry per source, in order: a readnumber.Reading or the
        imageprepare.ImageError that explains why it could not be read.
    """
    segs = []
    for source in sources:
        try:
            segs.append(readnumber.segment(source, single=single))
        except imageprepare.ImageError as e:
            segs.append(e)
    found = [seg for seg in segs if not isinstance(seg, Exception)]
    probs, digitness = classify(np.concatenate([seg.arrays for seg in found]) if found
                                else np.zeros((0, 28, 28), np.float32))
    out, offset = [], 0
    for seg in segs:
        if isinstance(seg, Exception):
            out.append(seg)
            continue
        end = offset + len(seg.arrays)
        out.append(readnumber.decode(seg, probs[offset:end], digitness[offset:end], not_a_number=not accept_all))
        offset = end
    return out


def save_prepared(directory, stem, arrays):
    """Write what the network sees: the 28×28 input, and the same enlarged for a person."""
    names = [stem] if len(arrays) == 1 else [f"{stem}_{i}" for i in range(len(arrays))]
    try:
        os.makedirs(directory, exist_ok=True)
        for name, array in zip(names, arrays):
            image = Image.fromarray(np.uint8(np.clip(array, 0, 1) * 255 + 0.5), mode="L")
            image.save(os.path.join(directory, f"{name}.png"))
            image.resize((280, 280), Image.Resampling.NEAREST).save(os.path.join(directory, f"{name}_x10.png"))
    except OSError as e:
        raise cli.UserError(f"cannot write to --save-prepared folder {directory}: {e.strerror or e}") from None


# A piece among digits is more likely a digit than ink on its own: in a reading where
# another piece is clearly a digit, a piece is refused only below this digitness (a margin
# ln 3 under the threshold) instead of 0.5. On 200 images per kind (numbers of MNIST
# training digits, 6 kinds each, touching and with gaps; --fast, seed 0): gapped numbers
# read 92.5 -> 94.5 % (0.35: 93.8 %), touching 23.5 -> 26.5 %, while non-digits answered
# "?" (73.0 %) and single digits (96.1 %) do not move: a drawing cut into pieces that are
# all doubtful is still one "?".
AMONG_DIGITS = 0.25


def record(name, reading, accept_all=False):
    """The JSON record of one image (what --json prints and the web API returns).

    Args:
        name: the image's name as the user gave it.
        reading: an entry of `read_images`.
        accept_all: never refuse a digit as "not a digit".

    Returns:
        A dict: `number` ("?" where a piece is no digit -- digitness below 0.5, or
        below AMONG_DIGITS beside a piece that is clearly a digit; just "?", with
        `rejected`, when no piece is), `probability`
        (confidence of the whole reading), `digits` (each with `digit` — None
        when refused, then `rejected`, `guess` and `score` —, `probability`,
        `probabilities`, `box`) and, for a single digit, the same keys at the
        top with `top`; `{"image", "error"}` for an error.
    """
    if isinstance(reading, Exception):
        return {"image": name, "error": str(reading)}
    among_digits = len(reading.digits) > 1 and any(d.digitness >= 0.5 for d in reading.digits)
    # The reader can find ink no number even where its pieces look like digits (strokes that
    # lean apart: readnumber._LEAN_APART); then every piece is refused.
    refuse_below = math.inf if reading.number == "?" else AMONG_DIGITS if among_digits else 0.5
    digits = []
    for d in reading.digits:
        best = d.value
        entry = {"digit": best, "probability": round(float(d.probs[best]), 4),
                 "probabilities": [round(float(p), 4) for p in d.probs], "box": [int(v) for v in d.box]}
        if d.digitness < refuse_below and not accept_all:
            entry.update(digit=None, rejected=True, guess=best, score=round(float(d.digitness), 4))
        digits.append(entry)
    out = {"image": name}
    if len(digits) == 1:
        (only,) = digits
        probs = reading.digits[0].probs
        out.update({k: only[k] for k in ("digit", "rejected", "guess", "score") if k in only})
        out.update(probability=only["probability"],
                   top=[[int(d), round(float(probs[d]), 4)] for d in np.argsort(-probs)[:3]])
    else:
        out["probability"] = round(float(reading.probability), 4)
    out["number"] = "".join("?" if d["digit"] is None else str(d["digit"]) for d in digits)
    if len(digits) > 1 and all(d["digit"] is None for d in digits):
        # No piece is a digit: the ink is one thing that is not a number (a word, a drawing),
        # not a number of unknown digits.
        out.update(number="?", rejected=True)
    out["digits"] = digits
    if reading.alternatives:
        out["alternatives"] = [[text, round(float(p), 4)] for text, p in reading.alternatives]
    return out


def _text(rec):
    """The text answer for a record: the number, or "? (not a digit)" for one refused digit."""
    if rec["number"] == "?":
        return "? (not a digit)"
    return f"{rec['number']} ({rec['probability'] * 100:.1f}%)"


def main(argv=None, *, prog, model_class, checkpoint, create_script):
    """Run the predict command line for one model.

    Args:
        argv: arguments (default: sys.argv[1:]).
        prog: the script's name, for messages.
        model_class: the model's tf.Module class, imported from its create script.
        checkpoint: the default checkpoint prefix.
        create_script: the script that trains this model, named when its checkpoint is missing.

    Returns:
        0, or 1 when any image could not be read.
    """
    parser = build_parser(prog, checkpoint, create_script)
    args = parser.parse_args(argv)
    if args.serve:
        if args.images:
            parser.error("--serve takes no IMAGE: the page and the API send the images")
    elif not args.images:
        parser.error(f"no image given — usage: python {prog} IMAGE [IMAGE ...]")
    paths, problems = expand(args.images)
    for folder, problem in problems:
        if args.json:
            print(json.dumps({"image": folder, "error": problem}), flush=True)
        else:
            print(f"{prog}: error: {problem}", file=sys.stderr, flush=True)
    if not paths and not args.serve:
        return 1
    single_answer = len(args.images) == 1 and not os.path.isdir(args.images[0]) and not args.json

    classify = load_classifier(model_class, args.checkpoint, create_script,
                               warn=lambda line: print(f"{prog}: note: {line}", file=sys.stderr, flush=True))
    if args.serve:
        import serve  # noqa: PLC0415  (the web server is loaded only when asked for)

        return serve.run(classify, args.host, args.port, accept_all=args.accept_all)

    failures = len(problems)
    for path, reading in zip(paths, read_images(paths, classify, single=args.single, accept_all=args.accept_all)):
        rec = record(path, reading, accept_all=args.accept_all)
        if "error" in rec:
            failures += 1
            if args.json:
                print(json.dumps(rec), flush=True)
            else:
                print(f"{prog}: error: {shown(rec['error'])}", file=sys.stderr, flush=True)
            continue
        if args.save_prepared:
            save_prepared(args.save_prepared, Path(path).stem, [d.array for d in reading.digits])
        if args.json:
            print(json.dumps(rec), flush=True)
        elif single_answer:
            print(rec["number"])
        else:
            print(f"{shown(path)}: {_text(rec)}", flush=True)
    return 1 if failures else 0
