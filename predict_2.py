"""Print the digit (or number) in each image, read by the CNN that create_model_2.py trained.

    python predict_2.py images/3_photo.jpg          # prints: 3
    python predict_2.py --json images/             # one JSON line per image
"""

import cli  # standard library only: safe before the heavy imports

if __name__ == "__main__":
    # Before TensorFlow's ≈ 2 s import: Ctrl-C then (or at any time: predict writes no
    # checkpoint) is one line, not a traceback.
    cli.exit_on_ctrl_c()

import functools  # noqa: E402

import predict  # noqa: E402
from create_model_2 import DeepCNN  # noqa: E402

main = functools.partial(predict.main, prog="predict_2.py", model_class=DeepCNN,
                         checkpoint="model2.ckpt", create_script="create_model_2.py")

if __name__ == "__main__":
    cli.run(main, nothing_written="")
