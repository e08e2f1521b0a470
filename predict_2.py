"""Print the digit (or number) in each image, read by the CNN that create_model_2.py trained.

    python predict_2.py images/3_photo.jpg          # prints: 3
    python predict_2.py --json images/             # one JSON line per image
"""

import functools

import common
import predict
from create_model_2 import DeepCNN

main = functools.partial(predict.main, prog="predict_2.py", model_class=DeepCNN,
                         checkpoint="model2.ckpt", create_script="create_model_2.py")

if __name__ == "__main__":
    common.run(main)
