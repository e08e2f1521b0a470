"""Print the digit (or number) in each image, read by the softmax regression that create_model_1.py trained.

    python predict_1.py images/3_photo.jpg          # prints: 3
    python predict_1.py --json images/             # one JSON line per image
"""

import functools

import common
import predict
from create_model_1 import SoftmaxRegression

main = functools.partial(predict.main, prog="predict_1.py", model_class=SoftmaxRegression,
                         checkpoint="model.ckpt", create_script="create_model_1.py")

if __name__ == "__main__":
    common.run(main)
