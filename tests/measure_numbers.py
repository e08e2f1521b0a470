"""Exact-read rate of whole numbers per user-style kind, and on real people's images.

    python tests/measure_numbers.py --checkpoint /work/ckpt/model2.ckpt --count 300
    python tests/measure_numbers.py --split train --layout touching --kinds plain,photo
    python tests/measure_numbers.py --field ../shared/field-numbers --singles ../shared/field

Numbers of 2-5 digits are composed from MNIST digits (training digits to
tune, test digits to report) that the network itself reads right, laid out
with gaps or pushed into each other until they touch (tests/userstyle.py),
and delivered as files of each kind; other handwriting styles are drawn with
draw_digit. Prints `kind: right/count rate ms/number` lines. Not collected by
pytest (the name does not start with test_); needs a trained model-2 checkpoint.
"""

import argparse
import glob
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import userstyle as us  # noqa: E402

KINDS = ["plain", "tight", "big_canvas", "transparent_rgba", "white_on_black", "photo", "scan",
         "thin_pen", "thick_marker", "photo_colour", "photo_shadow", "photo_slant", "photo_ruled", "styles"]


def classifier(checkpoint):
    """The restored DeepCNN as predict.py classifies: arrays -> (probs, digitness).

    digitness is the checkpoint's "not a digit" score, or all ones for a
    checkpoint saved without one (a note says so).
    """
    import predict  # noqa: PLC0415 (TensorFlow only when measuring)
    from create_model_2 import DeepCNN  # noqa: PLC0415

    return predict.load_classifier(DeepCNN, checkpoint, "create_model_2.py",
                                   lambda line: print("note:", line, file=sys.stderr))


def numbers(kind, layout, arrays, labels, good, count, seed):
    """Yield (label, file bytes) for `count` numbers of `kind`."""
    rng = np.random.default_rng(seed)
    made = 0
    while made < count:
        n = int(rng.integers(2, 6))
        if kind == "styles":
            digits = rng.integers(0, 10, n)
            inks = [us.draw_digit(int(d), rng, height=100) for d in digits]
            label = "".join(map(str, digits))
            file_kind = str(rng.choice(["plain", "photo", "white_on_black", "big_canvas"]))
        else:
            idx = rng.choice(good, n, replace=False)
            inks = [us.from_mnist(arrays[i], 100) for i in idx]
            label = "".join(str(int(labels[i])) for i in idx)
            file_kind = kind
        data, _, _ = us.make_number(inks, file_kind, rng, touch=layout == "touching")
        made += 1
        yield label, data


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=str(ROOT / "model2.ckpt"),
                   help="model-2 checkpoint prefix (default: %(default)s)")
    p.add_argument("--split", choices=["train", "test"], default="test",
                   help="MNIST digits the numbers are made of (default: %(default)s)")
    p.add_argument("--layout", choices=["touching", "gaps", "both"], default="both",
                   help="digits pushed into each other, or standing apart (default: %(default)s)")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds (default: %(default)s)")
    p.add_argument("--count", type=int, default=300, help="numbers per kind and layout (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--field", help="folder of real number images named LABEL_... (default: none)")
    p.add_argument("--singles", help="folder of real single-digit images named LABEL_... (default: none)")
    p.add_argument("--digits", type=int, default=0,
                   help="also read this many single MNIST digits per kind as user files (default: %(default)s)")
    p.add_argument("--six", type=int, default=0,
                   help="also time this many 6-digit numbers, gapped and touching, best of 3 (default: %(default)s)")
    p.add_argument("--show", action="store_true", help="print every misread (default: off)")
    p.add_argument("--data-dir", default=str(ROOT / "MNIST_data"), help="MNIST folder (default: %(default)s)")
    args = p.parse_args(argv)

    import input_data  # noqa: PLC0415
    import readnumber  # noqa: PLC0415

    classify = classifier(args.checkpoint)
    data = input_data.read_data_sets(args.data_dir, seed=0)
    split = data.train if args.split == "train" else data.test
    arrays, labels = split.images[:5000].reshape(-1, 28, 28), split.labels[:5000]
    good = np.flatnonzero(classify(arrays)[0].argmax(axis=1) == labels)

    import predict  # noqa: PLC0415 (TensorFlow only when measuring)

    def answer(source, single=False):
        """What `predict_2.py` prints for the image: refused pieces are "?"."""
        return predict.record("", readnumber.read(source, classify, single=single))["number"]

    def read_all(items):
        right, seconds, wrong = 0, 0.0, []
        for label, source in items:
            start = time.perf_counter()
            try:
                number = answer(source)
            except readnumber.ImageError:
                number = "error"
            seconds += time.perf_counter() - start
            right += number == label
            if number != label:
                wrong.append((label, number))
        return right, seconds, wrong

    layouts = ["touching", "gaps"] if args.layout == "both" else [args.layout]
    if args.count == 0:
        layouts = []
    for layout in layouts:
        for kind in args.kinds.split(","):
            items = [(label, us.open_image(d)) for label, d in
                     numbers(kind, layout, arrays, labels, good, args.count, args.seed)]
            right, seconds, wrong = read_all(items)
            print(f"{layout} {kind}: {right}/{len(items)} {right / len(items):.3f} "
                  f"{1000 * seconds / len(items):.1f} ms/number", flush=True)
            if args.show:
                print("   ", " ".join(f"{a}->{b}" for a, b in wrong[:40]))
    for layout in ["gaps", "touching"] if args.six else []:
        rng = np.random.default_rng(args.seed)
        images = []
        for _ in range(args.six):
            idx = rng.choice(good, 6, replace=False)
            data, _, _ = us.make_number([us.from_mnist(arrays[i], 100) for i in idx], "plain", rng,
                                        touch=layout == "touching")
            images.append(data)
        best = []
        for data in images:
            times = []
            for _ in range(3):
                start = time.perf_counter()
                readnumber.read(us.open_image(data), classify)
                times.append(time.perf_counter() - start)
            best.append(min(times))
        print(f"six digits {layout}: {1000 * np.mean(best):.1f} ms/number (decode, prepare, classify)", flush=True)
    for kind in args.kinds.split(",") if args.digits else []:
        rng = np.random.default_rng(args.seed)
        right = 0
        for i in range(args.digits):
            if kind == "styles":
                d = int(rng.integers(10))
                ink, label = us.draw_digit(d, rng, height=int(rng.integers(60, 300))), d
                data, _ = us.make(ink, str(rng.choice(["plain", "photo", "white_on_black"])), rng)
            else:
                ink, label = us.from_mnist(arrays[i], int(rng.integers(60, 300))), int(labels[i])
                data, _ = us.make(ink, kind, rng)
            try:
                right += answer(us.open_image(data), single=True) == str(label)
            except readnumber.ImageError:
                pass
        print(f"single digits {kind}: {right}/{args.digits} {right / args.digits:.3f}", flush=True)
    for folder in filter(None, [args.field, args.singles]):
        files = sorted(f for f in glob.glob(os.path.join(folder, "*_*.*")) if not f.endswith(".tsv"))
        items = [(os.path.basename(f).split("_")[0], f) for f in files]
        if folder == args.singles:
            right = sum(answer(f, single=True) == label for label, f in items)
            wrong = []
        else:
            right, _, wrong = read_all(items)
        print(f"{folder}: {right}/{len(items)}", flush=True)
        if args.show:
            print("   ", " ".join(f"{a}->{b}" for a, b in wrong))


if __name__ == "__main__":
    main()
