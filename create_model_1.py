"""Train the softmax regression of TF's "MNIST for beginners" tutorial; save model.ckpt.

    python create_model_1.py      # 1,000 steps of 100, a few seconds, ≈ 92 % test accuracy

predict_1.py imports SoftmaxRegression from here, so the model is defined once.
"""

import cli  # standard library only: safe before the heavy imports

if __name__ == "__main__":
    # Before TensorFlow's ≈ 2 s import: Ctrl-C then is one line, not a traceback.
    cli.exit_on_ctrl_c("nothing was written")

import time  # noqa: E402

import numpy as np  # noqa: E402

import training  # noqa: E402
from quiet_tensorflow import tf  # noqa: E402


class SoftmaxRegression(tf.Module):
    """y = softmax(xW + b): one linear layer, 784 pixels → 10 class scores."""

    MODEL_ID = "softmax-regression"

    def __init__(self, seed=0):
        # The tutorial starts from zeros: with a convex loss there is no symmetry to break.
        # `seed` is accepted so both models build the same way; nothing here is random.
        super().__init__(name="softmax_regression")
        del seed
        self.W = tf.Variable(tf.zeros([784, 10]), name="W")
        self.b = tf.Variable(tf.zeros([10]), name="b")

    def features(self, x):
        """What the "not a digit" score measures: with no hidden layer, the 784 pixels themselves.

        Args:
            x: N×784 float32 images.

        Returns:
            N×784 float32.
        """
        return tf.reshape(x, [-1, 784])

    def __call__(self, x, dropout_seed=None):
        """Logits (the softmax is left to the loss and to the reader).

        Args:
            x: N×784 float32 images, ink = 1, background = 0 (MNIST's scaling).
            dropout_seed: unused; the beginners' model has no dropout.

        Returns:
            N×10 float32 logits.
        """
        return x @ self.W + self.b


def make_train_step(model):
    variables = model.trainable_variables

    @tf.function(input_signature=[
        tf.TensorSpec([None, 784], tf.float32), tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.float32)])
    def train_step(images, labels, learning_rate):
        with tf.GradientTape() as tape:
            # The tutorial's cross-entropy summed over the batch (hence the small rate 0.01),
            # computed from the logits: log(softmax) of the original underflows to -inf.
            loss = tf.reduce_sum(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=model(images)))
        for var, grad in zip(variables, tape.gradient(loss, variables)):
            var.assign_sub(learning_rate * grad)
        return loss

    return train_step


def main(argv=None):
    parser = training.training_parser(
        __doc__.splitlines()[0], steps=1000, batch_size=100, learning_rate=0.01,
        checkpoint="model.ckpt", log_every=100)
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.log_every = min(args.steps, 20), min(args.log_every, 10)

    def build():
        model = SoftmaxRegression(seed=args.seed)
        train_step = make_train_step(model)
        train_step.get_concrete_function()  # traced now, while MNIST loads
        return model, train_step

    say = cli.Output()  # `| head` must not stop the training before it saves
    # Ctrl-C is noted and acted on between steps: raised inside a TensorFlow call it can come
    # out as another error, and inside the save it was once swallowed.
    with cli.ctrl_c_deferred() as check_interrupt:
        data, (model, train_step) = training.load_data_while(args, build, check_interrupt)
        rate = np.float32(args.learning_rate)
        start = time.perf_counter()
        for step in range(args.steps):
            check_interrupt()
            images, labels = data.train.next_batch(args.batch_size)
            loss = train_step(images, labels.astype(np.int64), rate)
            training.check_loss(loss, step + 1)
            if (step + 1) % args.log_every == 0:
                say(f"step {step + 1}, loss {float(loss) / args.batch_size:.4f}")
        elapsed = time.perf_counter() - start
        training.finish(model, model, data, args, elapsed, say, check_interrupt)


if __name__ == "__main__":
    cli.run(main)
