"""Figures of the "not a digit" refusals, per kind of file, as the README reports them.

    python tests/measure_notadigit.py model2.ckpt              # the CNN (predict_2.py's model)
    python tests/measure_notadigit.py model.ckpt --model 1     # the softmax regression
    python tests/measure_notadigit.py model2.ckpt --field ../shared/field

Every image goes through predict.py's own path (read_images: the number
reader, one network call per batch), as a user's file would:

- non-digits: letters, symbols, shapes and scribbles of tests/nondigits.py
  (seeds apart from any used while choosing), delivered in nine user-style
  kinds; "refused" = the answer is "?" (a single piece refused), "any ?" = the
  answer holds a "?" at all;
- digits: MNIST *test* digits delivered as user files of the same kinds; read
  right with refusals on, and with --accept-all (what the model reads);
- --field DIR: how many of real people's digit images are refused.

Not collected by pytest.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import input_data  # noqa: E402
import nondigits  # noqa: E402
import predict  # noqa: E402
import userstyle as us  # noqa: E402

KINDS = ["plain", "tight", "big_canvas", "transparent_rgba", "white_on_black", "photo", "scan",
         "thin_pen", "thick_marker"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="checkpoint prefix")
    p.add_argument("--model", choices=["1", "2"], default="2", help="which model (default: %(default)s)")
    p.add_argument("--per-kind", type=int, default=100, help="images per kind and class (default: %(default)s)")
    p.add_argument("--seed", type=int, default=2000, help="first seed of the samples (default: %(default)s)")
    p.add_argument("--field", help="a folder of real people's digit images: count the refused ones")
    args = p.parse_args()
    if args.model == "2":
        from create_model_2 import DeepCNN as model_class  # noqa: PLC0415
    else:
        from create_model_1 import SoftmaxRegression as model_class  # noqa: PLC0415
    classify = predict.load_classifier(model_class, args.checkpoint, "", warn=print)
    data = input_data.read_data_sets(str(input_data.DEFAULT_DATA_DIR))

    print(f"{'kind':18s} {'non-digits refused':>18s} {'any ?':>7s} {'held-out':>9s} "
          f"{'digits right':>13s} {'accept-all':>11s}")
    totals = np.zeros(5)
    for k, kind in enumerate(KINDS):
        rng = np.random.default_rng(args.seed + k)
        names, images = [], []
        for _ in range(args.per_kind):
            name, ink = nondigits.sample(rng)
            names.append(name)
            images.append(us.open_image(us.make(ink, kind, rng)[0]))
        numbers = [predict.record("", r).get("number", "") for r in predict.read_images(images, classify)]
        refused = np.array([n == "?" for n in numbers])
        anyq = np.array(["?" in n for n in numbers])
        held = np.isin(names, nondigits.HELD_OUT)
        idx = rng.integers(0, len(data.test.labels), args.per_kind)
        digits = [us.open_image(us.make(us.from_mnist(data.test.images[i], int(rng.integers(60, 300))), kind, rng)[0])
                  for i in idx]
        readings = predict.read_images(digits, classify)
        readings_all = predict.read_images(digits, classify, accept_all=True)
        labels = [str(data.test.labels[i]) for i in idx]
        right = np.mean([predict.record("", r).get("number") == t for r, t in zip(readings, labels)])
        right_all = np.mean([predict.record("", r, accept_all=True).get("number") == t
                             for r, t in zip(readings_all, labels)])
        row = np.array([refused.mean(), anyq.mean(), refused[held].mean() if held.any() else np.nan, right, right_all])
        totals += row
        print(f"{kind:18s} {row[0]:18.3f} {row[1]:7.3f} {row[2]:9.3f} {row[3]:13.4f} {row[4]:11.4f}", flush=True)
    mean = totals / len(KINDS)
    print(f"{'all kinds':18s} {mean[0]:18.3f} {mean[1]:7.3f} {mean[2]:9.3f} {mean[3]:13.4f} {mean[4]:11.4f}")
    if args.field:
        files = sorted(os.path.join(args.field, f) for f in os.listdir(args.field)
                       if Path(f).suffix.lower() in predict.IMAGE_SUFFIXES)
        numbers = [predict.record("", r).get("number", "") for r in predict.read_images(files, classify)]
        print(f"field: {sum('?' in n for n in numbers)} of {len(files)} refused; "
              f"{sum(n == os.path.basename(f).split('_')[0] for n, f in zip(numbers, files))} read right")


if __name__ == "__main__":
    main()
