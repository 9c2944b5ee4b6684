"""A trained model's serving graph: traced from its layers, converted to ONNX, checked before it is kept.

The serving graph is one ONNX model with inputs `image` float32 (n, 28, 28) and `target` int32 scalar, and outputs
`probabilities` (n, 10), `logits` (n, 10), `saliency` (n, 28, 28) (gradient × input of the target digit's logit;
target < 0 means each image's predicted digit), `hidden` (n, units) (the last hidden layer) and `conv1`, `conv2`, …
(n, h, w, filters) (every convolution's output, after its activation). ONNX Runtime runs it in the dashboard without
TensorFlow (`serving.py`). It is traced from the inference-only network (the same config without augmentation, which
has no weights), converted with tf2onnx, then loaded in ONNX Runtime and compared with Keras and TensorFlow's own
gradients before it is kept: tf2onnx goes on after errors by design and can write a wrong file silently, and two
layers' gradients are written here for speed (`serving_function`).

This module imports TensorFlow: only training workers, the CLI and `python -m digitlab.export` use it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .config import RunConfig
from .models import build_model

TOLERANCE = 1e-5  # largest difference from Keras allowed in probabilities and saliency
CHECK_IMAGES = 300  # test images a serving graph is checked on (callers pass them)
CHECK_BATCH = 50  # ... this many at a time: all 300 at once held ~380 MB more in the training worker (measured)
# Images whose saliency may differ: where a max-pooling window's two largest inputs are within rounding of each other,
# TensorFlow and ONNX Runtime can pick different maxima and send that window's gradient to different pixels (both
# correct; seen in 1 of 300 images on an AMX Xeon, whose TensorFlow rounds differently). A conversion fault differs
# on most images, not on 1%.
SALIENCY_SPARE = 0.01


class ServingExportError(ValueError):
    """The serving graph could not be made, or did not match Keras; the message says which layer or output."""


# ---------------------------------------------------------------------------------------------------------------
# The serving function, traced from the inference-only network
# ---------------------------------------------------------------------------------------------------------------

def inference_model(model: keras.Model, config: RunConfig) -> keras.Model:
    """The same network without its training-only layers (augmentation has no weights, so they carry over)."""
    if not config.augment:
        return model
    plain = build_model(config.replace(augment=False))
    plain.set_weights(model.get_weights())
    return plain


def serving_function(model: keras.Model, *, gradients: str = "lean") -> tf.types.experimental.PolymorphicFunction:
    """A tf.function computing every serving output (see the module docstring) from `model`'s layers.

    gradients : "lean", when the model's layers form a chain (DigitLab's do), runs two layers the cheaper way
        below (`_convolve`, `_dense_on_ink`) with the same outputs; "autodiff" leaves everything to TensorFlow (the
        export check's reference).
    """
    output = model.get_layer("probabilities")  # every DigitLab model ends in this Dense softmax layer
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    chain = _chain(model) if gradients == "lean" else None
    inner = keras.Model(model.inputs, [layer.output for layer in convs] + [output.input]) if chain is None else None

    def forward(image):
        """(every convolution's output, the last hidden layer)."""
        if chain is None:
            *maps, hidden = inner(image, training=False) if convs else [inner(image, training=False)]
            return maps, hidden
        x, maps, pixels = image, [], True  # pixels: x is still the image, reshaped
        for layer in chain:
            if _convolvable(layer):
                x = _convolve(layer, x)
            elif pixels and isinstance(layer, keras.layers.Dense) and len(x.shape) == 2:
                x = _dense_on_ink(layer, x)
            else:
                x = layer(x, training=False)
            maps += [x] if isinstance(layer, keras.layers.Conv2D) else []
            pixels = pixels and isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape))
        return maps, x

    @tf.function(input_signature=[tf.TensorSpec((None, 28, 28), tf.float32, name="image"),
                                  tf.TensorSpec((), tf.int32, name="target")])
    def serve(image, target):
        with tf.GradientTape() as tape:
            tape.watch(image)
            maps, hidden = forward(image)
            logits = tf.matmul(hidden, output.kernel) + output.bias  # (n, 10): the softmax saturates, logits do not
        chosen = tf.where(target < 0, tf.argmax(logits, axis=1, output_type=tf.int32), target)  # (n,): broadcast
        gradient = tape.gradient(logits, image, output_gradients=tf.one_hot(chosen, 10, dtype=logits.dtype))
        outputs = {"probabilities": tf.nn.softmax(logits), "logits": logits, "saliency": gradient * image,
                   "hidden": hidden}
        outputs.update({f"conv{i + 1}": m for i, m in enumerate(maps)})
        return outputs

    return serve


def _chain(model: keras.Model) -> list | None:
    """The layers from the input up to (not including) "probabilities" when each takes the previous one's output."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    try:
        previous = model.inputs[0]
        for layer in layers:
            if layer.input is not previous:
                return None
            if layer.name == "probabilities":
                return layers[:layers.index(layer)]
            previous = layer.output
    except (AttributeError, ValueError):  # a layer called more than once has no single input
        return None
    return None


def _convolvable(layer) -> bool:
    return (isinstance(layer, keras.layers.Conv2D) and tuple(layer.strides) == (1, 1)
            and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1 and layer.data_format == "channels_last"
            and (layer.padding == "valid" or all(k % 2 for k in layer.kernel_size)))


def _dense_on_ink(layer: keras.layers.Dense, x):
    """`layer(x)` for a dense layer on pixels x (n, pixels), reading only the kernel rows of pixels that some image
    in the batch inks (~20% of a drawn digit's): the same sums without their zero terms. A stroke's ANN call read
    the whole kernel twice (forward, and back for the saliency: 6.4 MB for 1,024 units) and waited on memory.
    Its gradient is left zero on pixels no image inks; the served saliency (gradient × image) is 0 there anyway."""
    kernel = tf.convert_to_tensor(layer.kernel)  # (pixels, units)
    used = tf.reshape(tf.where(tf.reduce_any(x != 0, axis=0)), [-1])  # (k,) pixels inked in some image
    rows = tf.gather(kernel, used)  # (k, units)

    @tf.custom_gradient
    def product(x):
        def gradient(dy):  # (n, units) → (n, pixels)
            inked = tf.matmul(dy, rows, transpose_b=True)  # (n, k)
            return tf.transpose(tf.scatter_nd(used[:, None], tf.transpose(inked), tf.shape(tf.transpose(x), tf.int64)))
        return tf.matmul(tf.gather(x, used, axis=1), rows), gradient

    y = product(x)
    if layer.use_bias:
        y = y + tf.convert_to_tensor(layer.bias)
    return layer.activation(y)


def _convolve(layer: keras.layers.Conv2D, x):
    """`layer(x)` for a stride-1 convolution, whose gradient to its input is written as a convolution too: the
    output's gradient, padded by kernel size − 1 − the forward padding, convolved with the kernel flipped in space
    and with its channels swapped: the gradient TensorFlow computes (the export check compares them), which tf2onnx
    writes as a ConvTranspose with ~20 shape nodes (Slice, Cast, Concat) around it. The shipped CNN's graph shrinks
    from 164 to 88 nodes and its call is 6-8% shorter. The first convolution (one input channel) is the exception:
    ONNX Runtime's Conv with one output channel is slow (0.10 ms here), its ConvTranspose is not (0.02 ms), and an
    output shape known but for the batch keeps tf2onnx from adding shape nodes (a stroke's CNN call: -7%)."""
    kernel = tf.convert_to_tensor(layer.kernel)  # (kh, kw, in, out)
    kh, kw = layer.kernel_size
    pad_h, pad_w = ((kh - 1) // 2, (kw - 1) // 2) if layer.padding == "same" else (0, 0)
    forward = [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]]
    backward = [[0, 0], [kh - 1 - pad_h] * 2, [kw - 1 - pad_w] * 2, [0, 0]]
    flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])  # (kh, kw, out, in)

    def gradient(dy):
        if kernel.shape[2] == 1:  # one input channel: a ConvTranspose
            shape = tf.stack([tf.shape(dy)[0], *x.shape[1:]])  # static but for the batch: tf2onnx adds no nodes
            return tf.nn.conv2d_transpose(dy, kernel, shape, 1, layer.padding.upper())
        return tf.nn.conv2d(dy, flipped, 1, backward)

    @tf.custom_gradient
    def convolution(x):
        return tf.nn.conv2d(x, kernel, 1, forward), gradient

    y = convolution(x)
    if layer.use_bias:
        y = y + tf.convert_to_tensor(layer.bias)
    return layer.activation(y)


def write_serving_graph(model: keras.Model, config: RunConfig, path, *, check_images: np.ndarray) -> Path:
    """Convert `model` to its serving graph at `path` (atomically), after checking it against Keras.

    check_images : float32 (n, 28, 28) in [0, 1], e.g. a few hundred test images.
    Raises ServingExportError when conversion fails or any output differs from Keras by more than TOLERANCE
    (probabilities, saliency) or 1e-4 of its range (activations); nothing is written then.
    """
    import tf2onnx  # noqa: PLC0415

    _register_gradient_handlers()
    path = Path(path)
    model = inference_model(model, config)
    serve = serving_function(model)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=17, output_path=str(tmp))
        _check(tmp, model, serving_function(model, gradients="autodiff"), np.asarray(check_images, np.float32))
    except ServingExportError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as error:  # tf2onnx and ONNX Runtime raise many types; all mean "cannot serve this model"
        tmp.unlink(missing_ok=True)
        raise ServingExportError(f"the serving graph could not be made: {type(error).__name__}: "
                                 f"{str(error).strip().splitlines()[0][:300] if str(error).strip() else ''}") from None
    os.replace(tmp, path)
    return path


def _check(path: Path, model: keras.Model, reference, images: np.ndarray) -> None:
    """The graph at `path` against Keras (probabilities) and `reference`, TensorFlow's own gradients (the rest); the
    saliency of up to SALIENCY_SPARE of the images may differ (max-pooling near-ties, above)."""
    from .serving import ServingModel  # noqa: PLC0415

    served = ServingModel(path)
    worst, saliency = {}, {}  # saliency: each target's per-image largest difference

    def note(name, difference, limit):
        worst[name] = (max(difference, worst.get(name, (0.0,))[0]), limit)

    for start in range(0, len(images), CHECK_BATCH):
        batch = images[start:start + CHECK_BATCH]
        expected = np.asarray(model(batch, training=False))
        for target in (-1, 3):
            got = served.run(batch, target=None if target < 0 else target)
            want = {k: v.numpy() for k, v in reference(tf.constant(batch), tf.constant(target, tf.int32)).items()}
            note(f"probabilities (target {target})", np.abs(got["probabilities"] - expected).max(), TOLERANCE)
            saliency.setdefault(target, []).extend(np.abs(got["saliency"] - want["saliency"]).reshape(len(batch), -1)
                                                   .max(axis=1))
            for name in [k for k in want if k == "hidden" or k.startswith("conv")]:
                scale = max(1.0, float(np.abs(want[name]).max()))
                note(name, np.abs(got[name] - want[name]).max() / scale, 1e-4)
    for target, per_image in saliency.items():  # the largest difference once the spare images are set aside
        spare = int(SALIENCY_SPARE * len(per_image))
        note(f"saliency (target {target})", float(np.sort(per_image)[len(per_image) - 1 - spare]), TOLERANCE)
    bad = {k: v for k, (v, limit) in worst.items() if not v <= limit}
    if bad:
        raise ServingExportError("the serving graph does not match Keras: " + ", ".join(
            f"{k} differs by {v:.2e}" for k, v in bad.items()))


# ---------------------------------------------------------------------------------------------------------------
# tf2onnx handlers for the three gradient ops that saliency brings into the graph
# ---------------------------------------------------------------------------------------------------------------

def _register_gradient_handlers() -> None:
    """ReluGrad, MaxPoolGrad and ShapeN have no tf2onnx handler; each is a few ONNX nodes (registered once)."""
    if getattr(_register_gradient_handlers, "done", False):
        return
    from tf2onnx import utils  # noqa: PLC0415
    from tf2onnx.handler import tf_op  # noqa: PLC0415

    def replace(ctx, node, op_type, inputs, **kwargs):
        shapes, dtypes, outputs = node.output_shapes, node.output_dtypes, node.output
        ctx.remove_node(node.name)
        ctx.make_node(op_type, inputs, outputs=outputs, name=node.name, shapes=shapes, dtypes=dtypes, **kwargs)

    @tf_op("ReluGrad")
    class ReluGrad:  # gradient × (features > 0)
        @classmethod
        def version_1(cls, ctx, node, **kwargs):
            gradient, features = node.input
            dtype = ctx.get_dtype(features)
            zero = ctx.make_const(utils.make_name("zero"), np.array(0, utils.map_onnx_to_numpy_type(dtype)))
            positive = ctx.make_node("Greater", [features, zero.output[0]]).output[0]
            mask = ctx.make_node("Cast", [positive], attr={"to": dtype}).output[0]
            replace(ctx, node, "Mul", [gradient, mask])

    @tf_op("MaxPoolGrad")
    class MaxPoolGrad:  # route each gradient to its window's maximum: MaxPool with indices, then MaxUnpool
        @classmethod
        def version_11(cls, ctx, node, **kwargs):
            original, _, gradient = node.input
            size, strides = list(node.get_attr("ksize").ints)[1:3], list(node.get_attr("strides").ints)[1:3]
            padding = node.get_attr_value("padding")
            padding = padding.decode() if isinstance(padding, bytes) else padding
            utils.make_sure(size == strides and padding == "VALID", "MaxPoolGrad is converted only for "
                            "non-overlapping VALID pools (stride = pool size), got pool %s, strides %s, padding %s",
                            size, strides, padding)
            nchw = {"perm": [0, 3, 1, 2]}
            x = ctx.make_node("Transpose", [original], attr=nchw).output[0]
            g = ctx.make_node("Transpose", [gradient], attr=nchw).output[0]
            indices = ctx.make_node("MaxPool", [x], attr={"kernel_shape": size, "strides": strides},
                                    output_count=2).output[1]
            shape = ctx.make_node("Shape", [x]).output[0]
            spread = ctx.make_node("MaxUnpool", [g, indices, shape],
                                   attr={"kernel_shape": size, "strides": strides}).output[0]
            replace(ctx, node, "Transpose", [spread], attr={"perm": [0, 2, 3, 1]})

    @tf_op("ShapeN")
    class ShapeN:  # one Shape per input, cast to the requested integer type
        @classmethod
        def version_1(cls, ctx, node, **kwargs):
            out_type = node.get_attr_value("out_type")
            inputs, outputs = list(node.input), list(node.output)
            shapes, dtypes = node.output_shapes, node.output_dtypes
            ctx.remove_node(node.name)
            for i, (source, target) in enumerate(zip(inputs, outputs)):
                shape = ctx.make_node("Shape", [source]).output[0]
                ctx.make_node("Cast", [shape], attr={"to": out_type}, outputs=[target], shapes=[shapes[i]],
                              dtypes=[dtypes[i]])

    _register_gradient_handlers.done = True
