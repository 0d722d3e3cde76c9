"""Load a delivered model (``.tflite`` or ``.tflite.zlib``) with its sidecar.

The interpreter is taken from, in order: ``ai_edge_litert`` (LiteRT, works with
NumPy 2 on x86_64 and aarch64), ``tflite_runtime`` (what older Pi images have;
it crashes under NumPy 2, which is detected and reported), and ``tf.lite``
where TensorFlow happens to be installed.

Limits, so that a wrong or hostile file cannot take a Pi down: a model is at
most :data:`MAX_MODEL_BYTES` (16 MiB, as a file and decompressed; the
delivered models are a few tens of kilobytes), and an interpreter gets at
most :data:`MAX_THREADS` threads.
"""
from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from native.params import FrontendParams, ModelInput
from pi_runtime.quiet import LITERT_INFO, filtered_stderr
from pi_runtime.sidecar import KwsSpec, SidecarError, model_stem, read_sidecar, sidecar_path

# Operators that keep state in variable tensors from one invoke() to the next.
STATEFUL_OPS = frozenset({"LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "RNN",
                          "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_RNN", "SVDF",
                          "VAR_HANDLE", "ASSIGN_VARIABLE", "READ_VARIABLE"})
TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8 of every .tflite
_FLOAT32 = np.dtype(np.float32)
# Far above any model this toolkit makes (tens of kB) or a Pi could run in
# real time, far below what would exhaust its memory: the bound of a zlib bomb.
MAX_MODEL_BYTES = 16 << 20
# More threads than cores only slows the interpreter down; a few times the
# cores is allowed (a Pi 4 has 4: up to 16), and a typo (33000) is refused
# instead of crashing inside the interpreter.
MAX_THREADS = max(8, 4 * (os.cpu_count() or 1))
# Ops a softmax output may pass through after the SOFTMAX itself.
_PASS_THROUGH_OPS = frozenset({"QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE"})


class ModelError(ValueError):
    """A model file that cannot be loaded or does not fit its frontend."""


def _interpreter_classes() -> List[Tuple[str, Any]]:
    """Interpreter classes that import here, best first, and why others did not."""
    found, reasons = [], []
    try:
        from ai_edge_litert.interpreter import Interpreter

        found.append(("ai_edge_litert", Interpreter))
    except ImportError as error:
        reasons.append(f"ai_edge_litert: {error}")
    try:
        from tflite_runtime.interpreter import Interpreter

        found.append(("tflite_runtime", Interpreter))
    except ImportError as error:
        reasons.append(f"tflite_runtime: {error}")
    except Exception as error:  # built against NumPy 1.x: fails inside its own import
        reasons.append(f"tflite_runtime: fails to import under NumPy {np.__version__} ({error}); "
                       "install ai-edge-litert instead")
    if not found:
        try:
            import tensorflow as tf

            found.append(("tf.lite", tf.lite.Interpreter))
        except ImportError as error:
            reasons.append(f"tensorflow: {error}")
    if not found:
        raise ModelError("no TFLite interpreter available; `pip install ai-edge-litert`.\n  " + "\n  ".join(reasons))
    return found


def read_model_bytes(path: Union[str, Path]) -> bytes:
    """The flatbuffer of ``path``, decompressed if it ends in ``.zlib``; checked.

    Neither the file nor its decompressed content may exceed
    :data:`MAX_MODEL_BYTES`; decompression stops at that bound.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MODEL_BYTES + 1)
    except OSError as error:
        raise ModelError(f"{path}: cannot read model ({error.strerror or error})") from None
    too_large = f"{path}: larger than {MAX_MODEL_BYTES >> 20} MiB{{}}: not a model this toolkit runs"
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(too_large.format(""))
    if path.name.endswith(".zlib"):
        decompressor = zlib.decompressobj()
        try:
            compressed, data = data, decompressor.decompress(data, MAX_MODEL_BYTES + 1)
        except zlib.error as error:
            raise ModelError(f"{path}: not a valid zlib stream ({error}); is the file truncated?") from None
        if len(data) > MAX_MODEL_BYTES:
            raise ModelError(too_large.format(" decompressed"))
        if not decompressor.eof:
            raise ModelError(f"{path}: the zlib stream ends early ({len(compressed)} bytes); is the file truncated?")
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{path}: not a TFLite flatbuffer (missing 'TFL3' identifier; truncated or wrong file?)")
    return data


class LoadedModel:
    """A TFLite model ready to run, with what its sidecar says about its input.

    Attributes
    ----------
    path : Path
    sidecar : dict or None
        The whole sidecar as read (version 2 layout), ``training`` and ``results`` included.
    spec : KwsSpec or None
        Keyword-spotting models: the sidecar's typed contract (frontend, model
        input, labels, keywords, output kind, detector); None for others.
    model_input : ModelInput or None
        Keyword-spotting models: the sidecar's, or the one given to :func:`load_model`.
    frontend_params : FrontendParams or None
        ``model_input.frontend``: the frames.
    labels : list of str or None
    interpreter_name : str
        ``ai_edge_litert``, ``tflite_runtime`` or ``tf.lite``.
    builtin_kernels : bool
        Whether the interpreter runs its own kernels only, without its default
        delegate (XNNPACK); see :func:`load_model`.
    size_bytes : int
        Bytes of the file as delivered (compressed if ``.zlib``).
    output_kind : str or None
        Classifiers (a sidecar with labels): ``"logits"`` or ``"probabilities"``,
        what the sidecar declares (checked against the graph), else what the
        graph shows; None when neither tells, and for other models.
    """

    def __init__(self, path: Union[str, Path], *, num_threads: int = 1,
                 frontend: Union[FrontendParams, ModelInput, None] = None, require_sidecar: bool = False,
                 verbose: bool = False, builtin_kernels: bool = False) -> None:
        check_num_threads(num_threads)
        self.path = Path(path)
        model_stem(self.path)  # checks the suffix with a clear message
        self.size_bytes = self.path.stat().st_size if self.path.is_file() else 0
        content = read_model_bytes(self.path)

        self.sidecar: Optional[Dict[str, Any]] = None
        if sidecar_path(self.path).is_file():
            self.sidecar = read_sidecar(self.path)
        elif require_sidecar:
            raise SidecarError(f"{sidecar_path(self.path)}: no sidecar beside {self.path.name}")
        self.spec: Optional[KwsSpec] = None
        if self.sidecar is not None and self.sidecar["task"] == "kws":
            self.spec = KwsSpec.from_sidecar(self.sidecar, source=str(sidecar_path(self.path)))
        self.model_input = _resolve_model_input(self.path, self.spec, frontend)
        self.frontend_params: Optional[FrontendParams] = None if self.model_input is None else self.model_input.frontend
        self.labels: Optional[List[str]] = None if self.spec is None else list(self.spec.labels)

        errors = []
        # LiteRT's "INFO: Created ... XNNPACK delegate" line stays off the terminal unless verbose.
        with filtered_stderr(LITERT_INFO, enabled=not verbose):
            for name, interpreter_class in _interpreter_classes():
                try:
                    self.interpreter = interpreter_class(model_content=content, num_threads=num_threads,
                                                         **_kernel_options(interpreter_class, builtin_kernels))
                    self._input = self.interpreter.get_input_details()[0]
                    self.input_shape: Tuple[int, ...] = tuple(int(n) for n in self._input["shape"])
                    self._check_input_shape()  # before allocating: a wrong sidecar costs nothing
                    self.interpreter.allocate_tensors()
                except ModelError:
                    raise
                except (ValueError, RuntimeError, IndexError) as error:  # this interpreter cannot run it
                    errors.append(f"{name}: {error}")
                    continue
                self.interpreter_name = name
                break
            else:
                raise ModelError(f"{self.path}: the interpreter rejected the model: " + "; ".join(errors))

        self.num_threads = num_threads
        self.builtin_kernels = builtin_kernels
        self._output = self.interpreter.get_output_details()[0]
        self.input_dtype = np.dtype(self._input["dtype"])
        self.output_shape: Tuple[int, ...] = tuple(int(n) for n in self._output["shape"])
        self._input_buffer = np.zeros(self.input_shape, dtype=self.input_dtype)
        self._input_size = self._input_buffer.size
        # What set_input / get_output need per call, looked up once.
        self._set_tensor, self._get_tensor = self.interpreter.set_tensor, self.interpreter.get_tensor
        self._input_index, self._output_index = self._input["index"], self._output["index"]
        scale, zero_point = self._input["quantization"]
        self._input_scale = scale if self.input_dtype.kind in "iu" and scale else None
        self._input_zero_point = zero_point
        if self._input_scale is not None:
            info = np.iinfo(self.input_dtype)
            self._input_min, self._input_max = info.min, info.max
            self._quantise_buffer = np.zeros(self.input_shape, dtype=np.float32)
        scale, zero_point = self._output["quantization"]
        self._output_scale = scale if np.dtype(self._output["dtype"]).kind in "iu" and scale else None
        self._output_zero_point = zero_point
        self.is_stateful = _has_stateful_ops(self.interpreter)
        # Logits or probabilities: a question for classifiers (labels) only.
        self.output_kind = self._check_output_kind() if self.labels is not None else None

    # -- running ---------------------------------------------------------------
    def set_input(self, x: np.ndarray) -> None:
        """Quantise (if the model is integer) and copy one example into the input tensor."""
        if type(x) is not np.ndarray or x.dtype is not _FLOAT32:
            x = np.asarray(x, dtype=np.float32)
        if x.size != self._input_size:
            raise ValueError(f"{self.path.name}: input has {x.size} values, the model takes "
                             f"{self._input_buffer.size} (shape {self.input_shape})")
        if self._input_scale is None:  # float input: the example itself when it has the shape
            self._set_tensor(self._input_index, x if x.shape == self.input_shape else x.reshape(self.input_shape))
            return
        # x / scale + zero_point, rounded and clipped, in float32 in a buffer kept for it
        quantised = self._quantise_buffer
        np.divide(x.reshape(self.input_shape), self._input_scale, out=quantised)
        np.add(quantised, self._input_zero_point, out=quantised)
        np.rint(quantised, out=quantised)
        np.clip(quantised, self._input_min, self._input_max, out=quantised)
        np.copyto(self._input_buffer, quantised, casting="unsafe")
        self._set_tensor(self._input_index, self._input_buffer)

    def invoke_raw(self) -> None:
        """``invoke()`` alone: what the course calls inference latency."""
        self.interpreter.invoke()

    def get_output(self) -> np.ndarray:
        """The first output, dequantised to float32, without the batch axis."""
        raw = self._get_tensor(self._output_index)  # a copy, ours to change
        if self._output_scale is not None:
            out = raw.astype(np.float32)
            out -= self._output_zero_point
            out *= self._output_scale
        else:
            out = raw if raw.dtype is _FLOAT32 else raw.astype(np.float32)
        return out[0] if out.shape and out.shape[0] == 1 else out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run one example (no batch axis) and return the float32 output.

        Each example is a sequence of its own: a recurrent model (LSTM, RNN)
        starts from zero state, as in Keras, instead of the state the previous
        ``invoke()`` left in its variable tensors.
        """
        if self.is_stateful:
            self.interpreter.reset_all_variables()
        self.set_input(x)
        self.invoke_raw()
        return self.get_output()

    def predict_many(self, xs: np.ndarray) -> np.ndarray:
        """Run each example of ``xs`` (first axis) in turn; returns stacked outputs."""
        return np.stack([self.predict(x) for x in xs]) if len(xs) else np.zeros((0,) + self.output_shape[1:], np.float32)

    def output_indices(self, labels: Sequence[str]) -> List[int]:
        """The position of each of ``labels`` in the model's output (its sidecar's labels).

        Raises ModelError naming the labels the model has no output for.
        """
        own = list(self.labels or [])
        missing = [label for label in labels if label not in own]
        if missing:
            raise ModelError(f"{self.path}: no output for {', '.join(missing)} (its labels: {', '.join(own) or 'none'})")
        return [own.index(label) for label in labels]

    # -- checks ----------------------------------------------------------------
    def graph_output_kind(self) -> Optional[str]:
        """What the graph shows its first output to be: ``"probabilities"`` when it
        comes from a SOFTMAX (or an int8 tensor quantised as softmax outputs are:
        scale 1/256, zero point -128), ``"logits"`` when it comes from another
        op, None when the interpreter does not tell."""
        try:
            ops = self.interpreter._get_ops_details()  # private API: absent from some interpreters
        except Exception:
            ops = None
        if ops:
            # A delegate's node (XNNPACK) claims the outputs of the ops it took over: skip it.
            producers = {int(out): op for op in ops if op["op_name"] != "DELEGATE" for out in op["outputs"]}
            tensor, op = int(self._output["index"]), None
            for _ in range(len(ops)):  # walk back through (de)quantise and reshape ops
                op = producers.get(tensor)
                if op is None or op["op_name"] not in _PASS_THROUGH_OPS or not len(op["inputs"]):
                    break
                tensor = int(op["inputs"][0])
            if op is not None:
                return "probabilities" if op["op_name"] == "SOFTMAX" else "logits"
        scale, zero_point = self._output["quantization"]
        if np.dtype(self._output["dtype"]) == np.int8 and scale:
            return "probabilities" if (abs(scale - 1 / 256) < 1e-9 and zero_point == -128) else None
        return None

    def _check_output_kind(self) -> Optional[str]:
        """The sidecar's output kind, refused when the graph shows the other one."""
        declared = self.spec.output_kind  # the sidecar's form was checked when it was read
        shown = self.graph_output_kind()
        if declared is not None and shown is not None and declared != shown:
            raise ModelError(f"{self.path.name}: the sidecar says the model outputs {declared} but its graph "
                             f"ends {'in a softmax' if shown == 'probabilities' else 'without a softmax'} "
                             f"({shown}): wrong sidecar?")
        return declared or shown

    def _check_input_shape(self) -> None:
        if self.model_input is None:
            return
        expected = tuple(self.model_input.feature_shape)
        got = tuple(n for n in self.input_shape[1:] if n != 1) if len(self.input_shape) > 1 else ()
        if got != tuple(n for n in expected if n != 1):
            raise ModelError(f"{self.path.name}: the model takes input {self.input_shape} but the frontend "
                             f"produces {expected} (frames, features): wrong sidecar or frontend flags?")

    def describe(self) -> str:
        return (f"{self.path.name}: {self.size_bytes} bytes, interpreter {self.interpreter_name} "
                f"({self.num_threads} thread{'s' if self.num_threads > 1 else ''}"
                f"{', builtin kernels' if self.builtin_kernels else ''}), input {self.input_shape} "
                f"{self.input_dtype.name}, output {self.output_shape}")


def _kernel_options(interpreter_class: Any, builtin_kernels: bool) -> Dict[str, Any]:
    """The interpreter's keyword for its own kernels without the default delegate (none by default)."""
    if not builtin_kernels:
        return {}
    resolvers = getattr(sys.modules[interpreter_class.__module__], "OpResolverType", None)
    if resolvers is None:
        raise ModelError(f"{interpreter_class.__module__} cannot leave out its default delegate")
    return {"experimental_op_resolver_type": resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def _has_stateful_ops(interpreter: Any) -> bool:
    """Whether the model keeps state between invokes; True when it cannot be told."""
    try:
        return any(op["op_name"] in STATEFUL_OPS for op in interpreter._get_ops_details())
    except Exception:  # private API of the interpreter: when absent, reset to be safe
        return True


def _resolve_model_input(path: Path, spec: Optional[KwsSpec],
                         given: Union[FrontendParams, ModelInput, None]) -> Optional[ModelInput]:
    """The sidecar's model input, or the one given (a FrontendParams: a 1 s clip, no resize);
    both present and different is an error."""
    if given is not None and not isinstance(given, (FrontendParams, ModelInput)):
        raise ValueError(f"frontend must be a FrontendParams or a ModelInput, got {type(given).__name__}")
    if isinstance(given, FrontendParams):
        given = ModelInput(frontend=given)
    from_sidecar = None if spec is None else spec.input
    if from_sidecar is not None and given is not None and from_sidecar != given:
        ours = {**from_sidecar.frontend.to_dict(), **from_sidecar.to_dict()}
        theirs = {**given.frontend.to_dict(), **given.to_dict()}
        detail = ", ".join(f"{key}: sidecar {value!r} vs given {theirs[key]!r}"
                           for key, value in ours.items() if theirs[key] != value)
        raise ModelError(f"{path.name}: the frontend given disagrees with the sidecar ({detail})")
    return from_sidecar or given


def check_num_threads(num_threads: int) -> int:
    """``num_threads`` if it is an integer from 1 to :data:`MAX_THREADS`, else ValueError."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) \
            or not 1 <= num_threads <= MAX_THREADS:
        raise ValueError(f"num_threads must be an integer from 1 to {MAX_THREADS} (4 x the {os.cpu_count()} "
                         f"cores here, at least 8), got {num_threads!r}")
    return int(num_threads)


def load_model(path: Union[str, Path], *, num_threads: int = 1,
               frontend: Union[FrontendParams, ModelInput, None] = None, require_sidecar: bool = False,
               verbose: bool = False, builtin_kernels: bool = False) -> LoadedModel:
    """Load ``path`` (``.tflite`` or ``.tflite.zlib``) and its sidecar if present.

    Parameters
    ----------
    path : str or Path
    num_threads : int
        Interpreter threads (the course measured with 1), at most :data:`MAX_THREADS`.
    frontend : FrontendParams or ModelInput, optional
        For a model without a sidecar (a FrontendParams: a 1 s clip, no
        resize); must equal the sidecar's when both exist.
    require_sidecar : bool
        Refuse a model without a sidecar.
    verbose : bool
        Let the interpreter's own INFO lines through to stderr (hidden by default).
    builtin_kernels : bool
        Run the interpreter's own kernels without its default delegate, XNNPACK (used by
        default). tflite_runtime 2.14 runs integer models on these kernels anyway: their
        outputs differ from XNNPACK's by a few quantisation steps (``python -m
        benchmarks.kernels`` measures what that does to accuracy and speed).

    Raises
    ------
    ModelError (a ValueError)
        Missing, truncated, oversized or non-TFLite file; a frontend whose
        feature shape is not the model's input; a sidecar ``"output"`` kind
        that the graph contradicts.
    SidecarError (a ValueError)
        A sidecar that is unreadable or breaks the schema.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a model file (.tflite or .tflite.zlib)")
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    return LoadedModel(path, num_threads=num_threads, frontend=frontend, require_sidecar=require_sidecar,
                       verbose=verbose, builtin_kernels=builtin_kernels)
