"""The command line of predict_1.py and predict_2.py: images in, digits out.

Both scripts differ only in the model they restore, which they import from
their create script; everything else (reading images, batching, output) is here.
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


def classify(model, arrays):
    """Softmax probabilities N×10 for N prepared 28×28 inputs, in batches of BATCH."""
    out = []
    for start in range(0, len(arrays), BATCH):
        batch = np.stack(arrays[start:start + BATCH]).reshape(-1, 784).astype(np.float32)
        out.append(tf.nn.softmax(model(tf.constant(batch))).numpy())
    return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


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


def result_record(path, digits, probs):
    """The JSON record of one image: its number, each digit with probability and box."""
    best = probs.argmax(axis=1)
    record = {"image": path}
    if len(digits) == 1:
        top = np.argsort(-probs[0])[:3]
        record.update(digit=int(best[0]), probability=round(float(probs[0, best[0]]), 4),
                      top=[[int(d), round(float(probs[0, d]), 4)] for d in top])
    else:
        record["probability"] = round(float(probs[np.arange(len(best)), best].min()), 4)
    record["number"] = "".join(str(d) for d in best)
    record["digits"] = [
        {"digit": int(d), "probability": round(float(p[d]), 4), "box": [int(v) for v in digit.box]}
        for d, p, digit in zip(best, probs, digits)]
    return record


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

    # Prepare every image first, then classify all their digits in a few network calls.
    prepared, failures = [], 0
    for path in paths:
        try:
            prepared.append((path, imageprepare.split_digits(path, single=args.single)))
        except (imageprepare.ImageError, OSError) as e:
            prepared.append((path, str(e)))
    arrays = [d.array for _, item in prepared if not isinstance(item, str) for d in item]
    probs = classify(model, arrays)

    offset = 0
    for path, item in prepared:
        if isinstance(item, str):
            failures += 1
            if args.json:
                print(json.dumps({"image": path, "error": item}), flush=True)
            else:
                print(f"{prog}: error: {item}", file=sys.stderr, flush=True)
            continue
        record = result_record(path, item, probs[offset:offset + len(item)])
        offset += len(item)
        if args.save_prepared:
            save_prepared(args.save_prepared, Path(path).stem, [d.array for d in item])
        if args.json:
            print(json.dumps(record), flush=True)
        elif single_answer:
            print(record["number"])
        else:
            print(f"{path}: {record['number']} ({record['probability'] * 100:.1f}%)", flush=True)
    return 1 if failures else 0
