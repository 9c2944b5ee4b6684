"""A model's anatomy: layer, type, output shape, parameters and FLOPs per layer, with totals, read without TensorFlow.

The table comes from the `config.json` inside a `.keras` file (a zip), so the dashboard and `python -m digitlab
inspect` can show it in a millisecond for any model built from standard Keras layers. Counting conventions:

- parameters: every weight Keras stores (`count_params()`), trainable or not (BatchNorm's moving mean and variance).
- FLOPs: per image at inference, by `layer_flops` (its docstring states the convention); `costs.py` counts a run's
  work with the same function, so the Inside page, `inspect` and the demo's caps agree.
- training only: layers that do nothing at inference (augmentation, dropout, noise, and DigitLab's stroke-width
  trick, whose random amount is 0 there) are marked and cost 0 FLOPs. They are found by folding the graph at
  inference: identity layers pass their input through, anything multiplied by a zero is zero, and layers whose output
  then reaches the model's output through no computed layer are not computed.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Layers that hold no weights and pass their input through unchanged at inference.
_IDENTITY_AT_INFERENCE = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
                          "AlphaDropout", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomFlip",
                          "RandomContrast", "RandomBrightness", "Identity", "InputLayer"}
_SHAPE_KEEPING = {"Activation", "ReLU", "LeakyReLU", "Softmax", "Rescaling", "BatchNormalization"}
_MERGES = {"Add": 1, "Subtract": 1, "Multiply": 1, "Average": 1, "Maximum": 0, "Minimum": 0}  # FLOPs per value
_ZERO_KEEPING = {"ReLU", "MaxPooling2D", "AveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling2D",
                 "Flatten", "Reshape"}  # f(0) = 0


@dataclass(frozen=True)
class Layer:
    name: str
    type: str  # the Keras class, e.g. "Conv2D"
    output_shape: tuple  # one image's, without the batch axis, e.g. (26, 26, 32)
    parameters: int
    flops: int  # per image at inference; 0 for training-only layers
    training_only: bool = False


@dataclass(frozen=True)
class Anatomy:
    layers: list[Layer]

    @property
    def parameters(self) -> int:
        return sum(layer.parameters for layer in self.layers)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    def to_dict(self) -> dict:
        """The `inspect --json` object: {"layers": [{name, type, output_shape, parameters, flops, training_only}],
        "parameters", "flops"}."""
        return {"layers": [{**asdict(layer), "output_shape": list(layer.output_shape)} for layer in self.layers],
                "parameters": self.parameters, "flops": self.flops}


def load_anatomy(path) -> Anatomy:
    """The anatomy of a `.keras` file (its config.json; no weights are read, nothing is run)."""
    from .modelfiles import ModelLoadError  # noqa: PLC0415

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise ModelLoadError(f"{path.name}: not a readable .keras archive ({error}); re-export it") from None
    return anatomy(config)


def anatomy(config: dict) -> Anatomy:
    """The anatomy of a Keras functional or Sequential model config (the dict in a `.keras` file's config.json).

    Raises ValueError naming a layer whose type this module cannot count (say which, and what is supported).
    """
    layers = _functional_layers(config)
    shapes, flops = {}, {}  # (layer, node) → output shape / FLOPs
    params = {}
    for layer in layers:
        kind, settings = layer["class_name"], layer["config"]
        for node, inputs in enumerate(layer["inputs"]):
            in_shapes = [shapes[ref] for ref in inputs]
            shapes[(layer["name"], node)] = _output_shape(kind, settings, in_shapes, layer["name"])
            flops[(layer["name"], node)] = layer_flops(kind, settings, in_shapes, shapes[(layer["name"], node)])
        first = [shapes[ref] for ref in layer["inputs"][0]] if layer["inputs"] and layer["inputs"][0] else []
        params[layer["name"]] = _parameters(kind, settings, first, layer["name"])
    computed = _computed_at_inference(layers, config)
    rows = []
    for layer in layers:
        nodes = [(layer["name"], i) for i in range(len(layer["inputs"]))]
        live = [node for node in nodes if node in computed]
        rows.append(Layer(name=layer["name"], type=layer["class_name"], output_shape=tuple(shapes[nodes[0]]),
                          parameters=params[layer["name"]], flops=sum(flops[node] for node in live),
                          training_only=not live and layer["class_name"] != "InputLayer"))
    return Anatomy(rows)


# ---------------------------------------------------------------------------------------------------------------
# Reading the config: layers in order, each with the (layer, node) references of its inputs, per call
# ---------------------------------------------------------------------------------------------------------------

def _functional_layers(config: dict) -> list[dict]:
    """[{name, class_name, config, inputs: [[(layer, node), ...] per call]}] in the config's (topological) order."""
    inner = config.get("config", {})
    if config.get("class_name") == "Sequential":  # a chain: each layer takes the previous one's output
        out, previous = [], None
        for layer in inner["layers"]:
            name = layer["config"]["name"]
            out.append({"name": name, "class_name": layer["class_name"], "config": layer["config"],
                        "inputs": [[] if layer["class_name"] == "InputLayer" else [(previous, 0)]]})
            previous = name
        if out and out[0]["class_name"] != "InputLayer":
            raise ValueError("a Sequential model without an Input layer has no known input shape; build it with "
                             "keras.Input(...) first")
        return out
    if config.get("class_name") != "Functional":
        raise ValueError(f"expected a Functional or Sequential Keras model, got {config.get('class_name')!r}")
    out = []
    for layer in inner["layers"]:
        calls = [[tuple(ref["config"]["keras_history"][:2]) for ref in _tensors(node["args"])]
                 for node in layer["inbound_nodes"]] or [[]]
        out.append({"name": layer["name"], "class_name": layer["class_name"], "config": layer["config"],
                    "inputs": calls})
    return out


def _tensors(args) -> list[dict]:
    """The Keras tensor references in a node's args (nested lists for merge layers)."""
    if isinstance(args, dict):
        return [args] if args.get("class_name") == "__keras_tensor__" else []
    if isinstance(args, (list, tuple)):
        return [t for a in args for t in _tensors(a)]
    return []


# ---------------------------------------------------------------------------------------------------------------
# Shapes, parameters and FLOPs per layer type
# ---------------------------------------------------------------------------------------------------------------

def _output_shape(kind: str, c: dict, inputs: list[tuple], name: str) -> tuple:
    x = tuple(inputs[0]) if inputs else ()
    if kind == "InputLayer":
        return tuple(c.get("batch_shape") or c.get("batch_input_shape"))[1:]
    if kind in _IDENTITY_AT_INFERENCE or kind in _SHAPE_KEEPING or kind == "Sequential":
        return x
    if kind == "Reshape":
        target = list(c["target_shape"])
        if -1 in target:
            target[target.index(-1)] = math.prod(x) // -math.prod(target)
        return tuple(target)
    if kind == "Flatten":
        return (math.prod(x),)
    if kind == "Dense":
        return x[:-1] + (c["units"],)
    if kind in _MERGES:
        return tuple(np.broadcast_shapes(*inputs))
    if kind == "Concatenate":
        axis = c.get("axis", -1) % len(x)
        return x[:axis] + (sum(s[axis] for s in inputs),) + x[axis + 1:]
    if kind in ("GlobalMaxPooling2D", "GlobalAveragePooling2D"):
        return (1, 1, x[2]) if c.get("keepdims") else (x[2],)
    if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
        _channels_last(c, name)
        window = c["kernel_size"] if kind == "Conv2D" else c["pool_size"]
        strides = c.get("strides") or window
        dilation = c.get("dilation_rate", (1, 1)) if kind == "Conv2D" else (1, 1)
        size = [_spatial(x[i], window[i], strides[i], dilation[i], c.get("padding", "valid")) for i in (0, 1)]
        return (*size, c["filters"] if kind == "Conv2D" else x[2])
    raise ValueError(f"layer {name!r}: cannot count a {kind} layer; inspect knows Dense, Conv2D, BatchNormalization, "
                     "pooling, merge, reshape, activation, dropout, noise and augmentation layers")


def _spatial(size: int, window: int, stride: int, dilation: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - dilation * (window - 1) - 1) // stride + 1


def _channels_last(c: dict, name: str) -> None:
    if c.get("data_format", "channels_last") != "channels_last":
        raise ValueError(f"layer {name!r}: only channels_last images are counted, got {c['data_format']!r}")


def _parameters(kind: str, c: dict, inputs: list[tuple], name: str) -> int:
    if kind == "Dense":
        return inputs[0][-1] * c["units"] + (c["units"] if c.get("use_bias", True) else 0)
    if kind == "Conv2D":
        kh, kw = c["kernel_size"]
        return kh * kw * inputs[0][-1] // c.get("groups", 1) * c["filters"] + (c["filters"] if c.get("use_bias", True)
                                                                              else 0)
    if kind == "BatchNormalization":
        return inputs[0][c.get("axis", -1)] * (2 + bool(c.get("scale", True)) + bool(c.get("center", True)))
    if kind == "Sequential":
        inner = _functional_layers({"class_name": "Sequential", "config": c})
        if any(layer["class_name"] not in _IDENTITY_AT_INFERENCE for layer in inner):
            raise ValueError(f"layer {name!r}: a nested model is counted only when it is augmentation (random "
                             "rotation, zoom, shift...); rebuild the model flat")
        return 0
    return 0


def layer_flops(kind: str, c: dict, inputs: list[tuple], output: tuple) -> int:
    """Floating-point operations of one call of a Keras layer, for one image at inference: DigitLab's one convention.

    - a multiply-add counts 2 (Dense, Conv2D: 2 × inputs per output value, per group for grouped convolutions);
    - a bias add counts 1 per output value (Dense, Conv2D with use_bias);
    - BatchNormalization and Rescaling count 2 per value (a scale and a shift, folded at inference);
    - Add, Subtract, Multiply, Average count 1 per value per input beyond the first; Maximum and Minimum 0;
    - activations (softmax included), pooling, reshapes, dropout, noise and augmentation count 0: they compare or
      move numbers, or do nothing at inference.

    kind : the Keras class name, e.g. "Conv2D". c : the layer's Keras config. inputs : one image's input shape per
    input, without the batch axis. output : one image's output shape. The reference CNN costs 5,291,594 FLOPs.
    """
    values = math.prod(output)
    if kind == "Dense":
        return values * (2 * inputs[0][-1] + (1 if c.get("use_bias", True) else 0))
    if kind == "Conv2D":
        kh, kw = c["kernel_size"]
        per_value = 2 * kh * kw * inputs[0][-1] // c.get("groups", 1) + (1 if c.get("use_bias", True) else 0)
        return values * per_value
    if kind in ("BatchNormalization", "Rescaling"):
        return 2 * values
    if kind in _MERGES:
        return _MERGES[kind] * values * (len(inputs) - 1)
    return 0


# ---------------------------------------------------------------------------------------------------------------
# What is computed at inference
# ---------------------------------------------------------------------------------------------------------------

def _computed_at_inference(layers: list[dict], config: dict) -> set:
    """The (layer, node) pairs that do work at inference (see the module docstring)."""
    value = {}  # (layer, node) → "zero", "live", or the (layer, node) it passes through unchanged
    for layer in layers:
        kind, c = layer["class_name"], layer["config"]
        for node, inputs in enumerate(layer["inputs"]):
            ins = [_resolve(value, ref) for ref in inputs]
            zero = [value.get(ref) == "zero" for ref in ins]
            if kind == "InputLayer":
                v = "live"
            elif kind in _IDENTITY_AT_INFERENCE or kind == "Sequential":
                v = ins[0]
            elif kind == "Rescaling" and (c.get("offset", 0) == 0 and (c.get("scale") == 0 or zero[0])):
                v = "zero"
            elif (kind in _ZERO_KEEPING or (kind == "Activation" and c.get("activation") == "relu")) and zero[0]:
                v = "zero"
            elif kind == "Multiply" and any(zero):
                v = "zero"
            elif kind in ("Add", "Subtract") and any(zero) and not (kind == "Subtract" and zero[0] and not zero[1]):
                rest = [ref for ref, z in zip(ins, zero) if not z]
                v = rest[0] if len(rest) == 1 else "zero" if not rest else "live"
            else:
                v = "live"
            value[(layer["name"], node)] = v
    outputs = config.get("config", {}).get("output_layers") or [[layers[-1]["name"], 0, 0]]
    outputs = outputs if isinstance(outputs[0], list) else [outputs]
    computed, stack = set(), [_resolve(value, tuple(ref[:2])) for ref in outputs]
    inputs_of = {(layer["name"], node): refs for layer in layers for node, refs in enumerate(layer["inputs"])}
    while stack:
        ref = stack.pop()
        if ref in computed or value.get(ref) == "zero":
            continue
        computed.add(ref)
        stack.extend(_resolve(value, i) for i in inputs_of[ref])
    return computed


def _resolve(value: dict, ref: tuple) -> tuple:
    """Follow pass-through layers back to the (layer, node) that computed the tensor."""
    while isinstance(value.get(ref), tuple):
        ref = value[ref]
    return ref


def load_first_kernel(path) -> tuple[str, np.ndarray]:
    """The first layer's weights in a `.keras` file, read with h5py (no TensorFlow): ("Conv2D", (kh, kw, 1, filters))
    when the model has convolutions, else ("Dense", (inputs, units)). Raises ModelLoadError when there is neither."""
    import io  # noqa: PLC0415

    import h5py  # noqa: PLC0415

    from .modelfiles import ModelLoadError  # noqa: PLC0415

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            layers = weights["layers"]
            for kind, key in (("Conv2D", "conv2d"), ("Dense", "dense")):  # Keras names the first of each kind so
                if key in layers:
                    return kind, np.asarray(layers[key]["vars"]["0"])
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise ModelLoadError(f"{path.name}: its weights cannot be read ({error})") from None
    raise ModelLoadError(f"{path.name}: has no Conv2D or Dense layer")
