"""Say "not a digit": how much a 28×28 input looks like a digit, and where to refuse it.

The score is the network's negative free energy, logsumexp(logits) (Liu,
Wang, Owens, Li, NeurIPS 2020, "Energy-based out-of-distribution
detection"): the log of the unnormalised density the network gives the
input. The --fast network is trained to keep it above a bound for digits and
below another for non-digits (outliers.py). An input is refused when its
score is below a threshold calibrated at the end of training so that 99.5 %
of the validation digits pass. The threshold is saved in the model's
checkpoint (`DigitScore`, under the name "digit_energy"); a checkpoint saved
with the earlier softmax-margin threshold ("digit_score") has none, so it
predicts without refusals and says to retrain.

Why this score (README, "Not a digit", has the tables). Single images of 540
non-digits of tuning seeds (tests/nondigits.py, nine user-style kinds)
against training digits delivered as user files, each score thresholded so
that 99.5 % of validation digits pass, refused:

    network trained on digits only (the tutorial's)      softmax margin 17 %, energy 10 %,
                                                         Mahalanobis (1024 units) 30 %
    + outlier exposure, uniform target (Hendrycks 2019)  margin 83.5-84.6 %, energy 76-85 %
    + outlier exposure, energy bound (Liu 2020; now)     energy 86.5-91.9 %, margin 26-40 %

(three training seeds each). The energy is not capped: a softmax margin
cannot fall below that of the uniform distribution, log(1/9), and the
uniform target put every non-digit there, just under the threshold; the
energy bound pushes a non-digit's logits down as far as it is no digit. The
Mahalanobis distance (Lee et al., NeurIPS 2018) helps a network trained on
digits alone, but outlier exposure pulls non-digits' features onto the
digits' clusters, where it cannot see them. One score for every model keeps
predicting one verified restore and one formula.
"""

import numpy as np

from quiet_tensorflow import tf

# The share of validation digits that must pass the threshold (the example figure).
KEEP = 0.995


class DigitScore(tf.Module):
    """The threshold on the digit score, saved in the checkpoint beside the model."""

    # Not "digit_score", the name of the earlier softmax-margin threshold: its values
    # mean nothing on this scale, so a checkpoint holding one counts as having none.
    NAME = "digit_energy"

    def __init__(self):
        super().__init__(name=self.NAME)
        self.threshold = tf.Variable(0.0, trainable=False, name="threshold")

    def digitness(self, logits):
        """How much each input looks like a digit, in (0, 1); below 0.5 it is refused.

        Args:
            logits: (N, 10) array.

        Returns:
            (N,) float32: sigmoid(score − threshold), 0.5 exactly at the threshold.
        """
        # The logistic function written with tanh, which does not overflow far from the threshold.
        return (0.5 + 0.5 * np.tanh(0.5 * (score(logits) - self.threshold.numpy()))).astype(np.float32)


def score(logits):
    """logsumexp of each row of (N, 10) logits (the negative free energy), computed stably.

    Returns:
        (N,) float64.
    """
    z = np.asarray(logits, np.float64)
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def calibrate(logits, keep=KEEP):
    """A DigitScore whose threshold lets `keep` of the given digits pass.

    Args:
        logits: (N, 10) logits of held-out digits (the validation set).
        keep: the share of them that must be accepted.

    Returns:
        DigitScore.
    """
    digit_score = DigitScore()
    digit_score.threshold.assign(float(np.quantile(score(logits), 1.0 - keep)))
    return digit_score
