"""Say "not a digit": how much a 28×28 input looks like a digit, and where to refuse it.

The score is the margin of the network's best digit over all the others,
log p_best − log(1 − p_best) (the log-odds of the top softmax probability),
computed from the logits so that it stays finite where p_best rounds to 1.
An input is refused when its margin is below a threshold calibrated at the
end of training so that 99.5 % of the validation digits pass. The threshold
is saved in the model's checkpoint (`DigitScore`, under the name "digit_score").

Why this score (README, "Not a digit", has the full table). On 360
non-digits (letters, symbols, shapes, scribbles from tests/nondigits.py, in
nine user-style kinds) against MNIST test digits delivered as user files,
each score thresholded so that 99.5 % of validation digits pass:

    network trained on digits only (the tutorial's)   softmax 17 %, energy 10 %,
                                                      Mahalanobis (1024 units) 30 % refused
    + outlier exposure (--fast, see outliers.py)      softmax 8x %, energy 8x %,
                                                      Mahalanobis 1 %

The softmax of a network that was shown non-digits with a uniform target
separates best; the Mahalanobis distance (Lee et al., NeurIPS 2018) helps a
network trained on digits alone, but outlier exposure pulls non-digits'
features onto the digits' clusters, where it cannot see them. One score for
every model keeps predicting one verified restore and one formula.
"""

import numpy as np

from quiet_tensorflow import tf

# The share of validation digits that must pass the threshold (the example
# figure); on MNIST test digits delivered as user files 99.4 % then pass.
KEEP = 0.995


class DigitScore(tf.Module):
    """The threshold on the digit margin, saved in the checkpoint beside the model."""

    NAME = "digit_score"

    def __init__(self):
        super().__init__(name=self.NAME)
        self.threshold = tf.Variable(0.0, trainable=False, name="threshold")

    def digitness(self, logits):
        """How much each input looks like a digit, in (0, 1); below 0.5 it is refused.

        Args:
            logits: (N, 10) array.

        Returns:
            (N,) float32: sigmoid(margin − threshold), 0.5 exactly at the threshold.
        """
        # The logistic function written with tanh, which does not overflow far from the threshold.
        return (0.5 + 0.5 * np.tanh(0.5 * (margin(logits) - self.threshold.numpy()))).astype(np.float32)


def margin(logits):
    """log p_best − log(1 − p_best) of the softmax of (N, 10) logits, computed stably.

    Returns:
        (N,) float64: z_best − logsumexp(the other nine logits).
    """
    z = np.sort(np.asarray(logits, np.float64), axis=1)
    rest = z[:, :-1]
    top = rest[:, -1:]
    return z[:, -1] - (top[:, 0] + np.log(np.exp(rest - top).sum(axis=1)))


def calibrate(logits, keep=KEEP):
    """A DigitScore whose threshold lets `keep` of the given digits pass.

    Args:
        logits: (N, 10) logits of held-out digits (the validation set).
        keep: the share of them that must be accepted.

    Returns:
        DigitScore.
    """
    score = DigitScore()
    score.threshold.assign(float(np.quantile(margin(logits), 1.0 - keep)))
    return score
