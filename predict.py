"""The command line of predict_1.py and predict_2.py: images in, digits out.

Both scripts differ only in the model they restore, which they import from
their create script; everything else (reading images, batching, output) is here.
`read_images` and `record` are also what the web server answers with.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import common
import imageprepare
from common import tf

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
    p.add_argument("--save-prepared", metavar="DIR",
                   help="write the 28×28 input the network saw for each digit (and a 10× enlargement) into DIR")
    return p


def expand(paths):
    """Files as given, and the image files inside any folder given (sorted)."""
    for path in paths:
        if os.path.isdir(path):
            for child in sorted(Path(path).iterdir()):
                if child.suffix.lower() in IMAGE_SUFFIXES and child.is_file():
                    yield str(child)
        else:
            yield path


class Classifier:
    """A restored model as the readers use it: prepared 28×28 inputs → (probabilities, digitness).

    Args:
        model: the restored tf.Module (N×784 → N×10 logits).
    """

    def __init__(self, model):
        self.model = model

    def __call__(self, arrays):
        """Classify K prepared inputs in batches of BATCH.

        Args:
            arrays: (K, 28, 28) float32, ink = 1.

        Returns:
            (probs, digitness): (K, 10) float32 softmax and (K,) float32 in [0, 1],
            how much each input looks like a digit (below 0.5: not a digit).
        """
        arrays = np.asarray(arrays, np.float32).reshape(-1, 784)
        probs = [tf.nn.softmax(self.model(tf.constant(arrays[s:s + BATCH]))).numpy()
                 for s in range(0, len(arrays), BATCH)]
        probs = np.concatenate(probs) if probs else np.zeros((0, 10), np.float32)
        return probs, np.ones(len(probs), np.float32)


class _Digit:
    """One digit of a reading: its input, box, ten probabilities and digitness."""

    def __init__(self, array, box, probs, digitness):
        self.array, self.box, self.probs, self.digitness = array, box, probs, float(digitness)


class _Reading:
    def __init__(self, digits):
        self.digits = digits
        self.number = "".join(str(int(d.probs.argmax())) for d in digits)
        self.probability = min(float(d.probs.max()) for d in digits)
        self.alternatives = []


def read_images(sources, classify, *, single=False):
    """Read the digit or number in each source, classifying every candidate of every image together.

    Args:
        sources: paths or PIL images.
        classify: a Classifier (or any function of the same shape).
        single: read each image as one digit.

    Returns:
        One entry per source, in order: a reading (`.number`, `.probability`,
        `.alternatives`, `.digits` with `.array`, `.box`, `.probs`, `.digitness`)
        or the imageprepare.ImageError that explains why it could not be read.
    """
    found = []
    for source in sources:
        try:
            found.append(imageprepare.split_digits(source, single=single))
        except imageprepare.ImageError as e:
            found.append(e)
    arrays = [d.array for item in found if not isinstance(item, Exception) for d in item]
    probs, digitness = classify(np.asarray(arrays, np.float32).reshape(-1, 28, 28))
    out, offset = [], 0
    for item in found:
        if isinstance(item, Exception):
            out.append(item)
            continue
        digits = [_Digit(d.array, d.box, probs[offset + i], digitness[offset + i]) for i, d in enumerate(item)]
        offset += len(item)
        out.append(_Reading(digits))
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
        raise common.UserError(f"cannot write to --save-prepared folder {directory}: {e.strerror or e}") from None


def record(name, reading):
    """The JSON record of one image (what --json prints and the web API returns).

    Args:
        name: the image's name as the user gave it.
        reading: an entry of `read_images`.

    Returns:
        A dict: `number`, `probability` (confidence of the whole reading),
        `digits` (each with `digit`, `probability`, `probabilities`, `box`) and,
        for a single digit, `digit` and `top`; `{"image", "error"}` for an error.
    """
    if isinstance(reading, Exception):
        return {"image": name, "error": str(reading)}
    out = {"image": name}
    if len(reading.digits) == 1:
        probs = reading.digits[0].probs
        best = int(probs.argmax())
        out.update(digit=best, probability=round(float(probs[best]), 4),
                   top=[[int(d), round(float(probs[d]), 4)] for d in np.argsort(-probs)[:3]])
    else:
        out["probability"] = round(float(reading.probability), 4)
    out["number"] = reading.number
    out["digits"] = [
        {"digit": int(d.probs.argmax()), "probability": round(float(d.probs.max()), 4),
         "probabilities": [round(float(p), 4) for p in d.probs], "box": [int(v) for v in d.box]}
        for d in reading.digits]
    return out


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
    if not args.images:
        parser.error(f"no image given — usage: python {prog} IMAGE [IMAGE ...]")
    paths = list(expand(args.images))
    if not paths:
        parser.error("no image files found in " + ", ".join(args.images))
    single_answer = len(args.images) == 1 and not os.path.isdir(args.images[0]) and not args.json

    model = model_class()
    common.restore_checkpoint(model, args.checkpoint, train_hint=f"python {create_script}")

    failures = 0
    for path, reading in zip(paths, read_images(paths, Classifier(model), single=args.single)):
        rec = record(path, reading)
        if "error" in rec:
            failures += 1
            if args.json:
                print(json.dumps(rec), flush=True)
            else:
                print(f"{prog}: error: {rec['error']}", file=sys.stderr, flush=True)
            continue
        if args.save_prepared:
            save_prepared(args.save_prepared, Path(path).stem, [d.array for d in reading.digits])
        if args.json:
            print(json.dumps(rec), flush=True)
        elif single_answer:
            print(rec["number"])
        else:
            print(f"{path}: {rec['number']} ({rec['probability'] * 100:.1f}%)", flush=True)
    return 1 if failures else 0
