"""DigitLab: train, study and compare handwritten-digit models on MNIST.

The package never imports Streamlit; submodules that need TensorFlow import it themselves, so
`import digitlab` stays instant.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the terminal

__version__ = "0.1.0"
