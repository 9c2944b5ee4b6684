"""DigitLab: train, study and compare handwritten-digit models on MNIST.

The package never imports Streamlit; submodules that need TensorFlow import it themselves, so
`import digitlab` stays instant.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the terminal
# oneDNN kernels in every process that trains: TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI/BF16
# or AMX; on AVX2-only CPUs its default kernels for max-pooling gradients and one-channel convolutions are several
# times slower (benchmarks/RESULTS.md, "Training speed"). Read once, when TensorFlow is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
