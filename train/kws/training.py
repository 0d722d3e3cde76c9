"""One keyword-spotting run: features -> training (pruning, QAT) -> export -> evaluation.

Evaluation always goes through the exported file and ``pi_runtime.model.load_model``,
so every number reported is what the device gets from that file.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from native.params import FrontendParams, ModelInput
from train.kws.augment import AugmentConfig, augmented_features, mask_features, mix_up
from pi_runtime.labels import NON_KEYWORD_LABELS, UNKNOWN_LABEL
from train.kws.data import ClipSet
from train.kws.features import compute_features

# What distillation's teachers hear (RunConfig.distillation_input).
DISTILLATION_INPUTS = ("augmented", "clean")
# The pooling before a model's output layer (train.kws.models): "average_max" hands it both, concatenated.
GLOBAL_POOLINGS = ("average", "max", "average_max")


def check_global_pooling(kind) -> str:
    """``kind`` if it names one of :data:`GLOBAL_POOLINGS`, else a ValueError naming them."""
    if kind not in GLOBAL_POOLINGS:
        raise ValueError(f"global_pooling must be one of {', '.join(GLOBAL_POOLINGS)}, got {kind!r}")
    return kind


def standardisation(train_features: np.ndarray) -> Dict[str, float]:
    """``feature_mean`` and ``feature_std`` for the model builders: the training features' scalar mean
    and deviation (1 where they do not vary)."""
    return {"feature_mean": float(train_features.mean()), "feature_std": float(train_features.std()) or 1.0}


def _is_positive_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one trained and exported model.

    Parameters
    ----------
    model : name in ``train.kws.models.MODELS``
    alpha : width multiplier
    blocks : depthwise-separable blocks (DS-CNNs; None = the model's default)
    first_kernel, first_stride, kernel_size : the plain DS-CNN's first convolution and its
        stride (time, frequency) and its depthwise convolutions (square); None = 3 x 3, 2 x 2, 3
    global_pooling : before the output layer, one of :data:`GLOBAL_POOLINGS`
    frontend : the features the model is trained on and deployed with
    epochs, batch_size, learning_rate : training (Adam, cosine decay to 1 % of the rate)
    weight_decay : above 0, decoupled weight decay of the convolution and dense kernels (AdamW;
        each step shrinks them by ``weight_decay`` times the step's learning rate)
    final_sparsity : magnitude pruning target (0 = no pruning), reached with
        PolynomialDecay between ``pruning_begin_fraction`` and ``pruning_end_fraction`` of training
    qat_epochs : quantisation-aware fine-tuning epochs after training (0 = post-training quantisation)
    quantization : "none" | "weights" | "int8"
    compress : deliver ``.tflite.zlib`` instead of ``.tflite``
    augment : augmentation, or None for none
    label_smoothing : of the cross-entropy loss
    train_on_all_words, head_epochs : for a keyword subset, train on the clips of every word
        (four times the data for go/stop), then keep the keywords' outputs and fine-tune
        that smaller head alone on the keywords' clips for up to ``head_epochs`` epochs
    teachers : exported models to distil from during training (paths; relative ones are
        under ``models/``), their softened answers (``distillation_temperature``) mixed into
        the targets with ``distillation_weight``; empty for plain labels
    distillation_input : what the teachers hear: ``"augmented"``, the student's inputs of the
        epoch, or ``"clean"``, the clean clips, so that a student under noise learns what the
        teachers answer without it (teacher-student learning on parallel data, Li et al., 2017)
    weight_average_decay : above 0, keep an exponential moving average of the weights with this
        decay per step (``train.toolbox.weight_averaging``; from the step pruning masks are final)
        and select and deliver the averaged weights instead of the last step's
    calibrate_temperature : multiply the logits by the factor that minimises the validation
        negative log-likelihood, folded into the output layer before export (same answers,
        calibrated probabilities for a detector's fixed threshold; see ``train.toolbox.calibration``)
    mixup_alpha : above 0, blend each training example's features and targets with another's
        (``train.kws.augment.mix_up``, weights from Beta(mixup_alpha, mixup_alpha)) in the main
        training phase
    seed : for weights, shuffling and augmentation
    """

    model: str = "ds_cnn"
    alpha: float = 0.25
    blocks: Optional[int] = None
    first_kernel: Optional[Tuple[int, int]] = None
    first_stride: Optional[Tuple[int, int]] = None
    kernel_size: Optional[int] = None
    global_pooling: str = "average"
    frontend: FrontendParams = field(default_factory=FrontendParams)
    clip_duration_ms: int = 1000
    resize: Optional[Tuple[int, int]] = None
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 0.01
    weight_decay: float = 0.0
    final_sparsity: float = 0.0
    initial_sparsity: float = 0.0
    pruning_begin_fraction: float = 0.2
    pruning_end_fraction: float = 0.7
    qat_epochs: int = 0
    quantization: str = "int8"
    compress: bool = False
    augment: Optional[AugmentConfig] = field(default_factory=AugmentConfig)
    label_smoothing: float = 0.0
    train_on_all_words: bool = False
    head_epochs: int = 10
    teachers: Tuple[str, ...] = ()
    distillation_weight: float = 0.5
    distillation_temperature: float = 2.0
    distillation_input: str = "augmented"
    weight_average_decay: float = 0.0
    calibrate_temperature: bool = False
    mixup_alpha: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if not 0.0 <= self.final_sparsity < 1.0:
            raise ValueError(f"final_sparsity must be in [0, 1), got {self.final_sparsity}")
        if self.quantization not in ("none", "weights", "int8"):
            raise ValueError(f"quantization must be none, weights or int8, got {self.quantization!r}")
        if self.qat_epochs > 0 and self.final_sparsity > 0:
            # tfmot's prune-preserving QAT scheme rejects the standardisation (Rescaling) layer.
            raise ValueError("quantisation-aware training of a pruned model is not supported: "
                             "use qat_epochs=0 (post-training int8) or final_sparsity=0")
        if self.train_on_all_words and self.qat_epochs > 0:
            raise ValueError("train_on_all_words fine-tunes a float head: use post-training quantisation "
                             "(qat_epochs=0)")
        if self.head_epochs < 0:
            raise ValueError(f"head_epochs must be >= 0, got {self.head_epochs}")
        if self.qat_epochs > 0 and self.quantization != "int8":
            raise ValueError("quantisation-aware training needs quantization='int8'")
        if self.calibrate_temperature and self.qat_epochs > 0:
            raise ValueError("calibrate_temperature scales a float output layer: use qat_epochs=0")
        if not 0.0 < self.distillation_weight <= 1.0 or self.distillation_temperature <= 0:
            raise ValueError(f"need 0 < distillation_weight <= 1 and distillation_temperature > 0, got "
                             f"{self.distillation_weight}, {self.distillation_temperature}")
        if not (0.0 <= self.weight_decay < 1.0):
            raise ValueError(f"weight_decay must be in [0, 1), got {self.weight_decay!r}")
        if not 0.0 <= self.weight_average_decay < 1.0:
            raise ValueError(f"weight_average_decay must be in [0, 1), got {self.weight_average_decay}")
        if not (self.mixup_alpha >= 0 and math.isfinite(self.mixup_alpha)):
            raise ValueError(f"mixup_alpha must be a finite number >= 0, got {self.mixup_alpha}")
        if self.distillation_input not in DISTILLATION_INPUTS:
            raise ValueError(f"distillation_input must be one of {', '.join(DISTILLATION_INPUTS)}, "
                             f"got {self.distillation_input!r}")
        for option in ("first_kernel", "first_stride"):
            value = getattr(self, option)
            if value is not None:
                if not (isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_positive_int, value))):
                    raise ValueError(f"{option} must be two positive integers (time, frequency), got {value!r}")
                object.__setattr__(self, option, tuple(int(k) for k in value))
        if self.kernel_size is not None and not _is_positive_int(self.kernel_size):
            raise ValueError(f"kernel_size must be a positive integer, got {self.kernel_size!r}")
        check_global_pooling(self.global_pooling)
        object.__setattr__(self, "teachers", tuple(str(path) for path in self.teachers))
        object.__setattr__(self, "resize", self.model_input.resize)  # checked against the frontend

    @property
    def model_input(self) -> ModelInput:
        """One model input: ``clip_duration_ms`` of audio through ``frontend``, resized to ``resize``."""
        return ModelInput(frontend=self.frontend, clip_duration_ms=self.clip_duration_ms, resize=self.resize)

    def build_model(self, num_labels: int, train_features: np.ndarray):
        """The untrained model this configuration names, its input standardised by the training
        features (:func:`standardisation`, folded into the model)."""
        from train.kws.models import build_model

        return build_model(self.model, self.model_input.feature_shape, num_labels, alpha=self.alpha,
                           blocks=self.blocks, first_kernel=self.first_kernel, kernel_size=self.kernel_size,
                           first_stride=self.first_stride, global_pooling=self.global_pooling,
                           **standardisation(train_features))

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["frontend"] = self.frontend.to_dict()
        return out

    def replace(self, **changes: Any) -> "RunConfig":
        return replace(self, **changes)


@dataclass
class RunResult:
    """What a run measured on its exported file.

    Attributes
    ----------
    path : the delivered model file
    accuracy : on the test clips, through ``load_model`` (0..1)
    keyword_accuracy : on the test clips of the keywords only (equals ``accuracy`` without an
        unknown class); a keyword clip classified as unknown or silence counts as an error
    unknown_accuracy : share of the test clips of other words (class ``_unknown_``) answered
        ``_unknown_`` (NaN when the test split has none)
    val_accuracy : of the selected checkpoint (Keras, float), used for model selection
    size_bytes : bytes of the delivered file; ``tflite_bytes`` / ``zlib_bytes`` both forms
    sparsity : fraction of zero kernel weights in the exported file
    inference_ms, total_ms : {"mean", "median", "p95"} over ``latency_runs`` runs, one thread
    train_seconds : training (features, fit, QAT); ``run_seconds``: the whole run
    """

    path: Path
    accuracy: float
    val_accuracy: float
    size_bytes: int
    tflite_bytes: int
    zlib_bytes: int
    sparsity: float
    inference_ms: Dict[str, float]
    total_ms: Dict[str, float]
    train_seconds: float
    run_seconds: float
    num_test_clips: int
    best_epoch: int
    parameters: int
    keyword_accuracy: float = float("nan")
    num_keyword_clips: int = 0
    unknown_accuracy: float = float("nan")
    num_unknown_clips: int = 0

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


@dataclass
class Splits:
    """The clips of one run: training, validation (model selection) and test (reporting)."""

    train: ClipSet
    val: ClipSet
    test: ClipSet

    @property
    def labels(self) -> Tuple[str, ...]:
        return self.train.labels


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_export_evaluate(config: RunConfig, splits: Splits, output_path: Path, *,
                          keywords: Optional[Sequence[str]] = None,
                          feature_backend: str = "native", latency_runs: int = 100,
                          training_info: Optional[Dict[str, Any]] = None,
                          verbose: bool = True) -> RunResult:
    """Train ``config`` on ``splits.train``, export to ``output_path``, evaluate the file.

    With ``keywords`` (labels other than ``splits.labels``; needs
    ``config.train_on_all_words``) the model learns every word and the
    delivered one classifies ``keywords`` only (see :func:`fit_keyword_head`):
    the clips of the other words are left out, or become ``_unknown_`` when
    ``keywords`` has that class (:meth:`ClipSet.relabel`).
    The sidecar beside the model holds the frontend, the labels, how it was
    trained and the measured results.
    """
    from train.keras_env import tf

    say = log if verbose else (lambda message: None)
    started = time.perf_counter()
    tf.keras.utils.set_random_seed(config.seed)
    keywords = tuple(keywords) if keywords is not None else splits.labels
    if keywords != splits.labels and not config.train_on_all_words:
        raise ValueError("keywords other than the splits' labels need train_on_all_words=True")
    params = config.model_input
    say(f"features: {params.frontend.feature_kind} {params.feature_shape} for "
        f"{len(splits.train)}/{len(splits.val)}/{len(splits.test)} clips ({feature_backend})")
    val_features = compute_features(splits.val.audio, params, backend=feature_backend)
    train_features = compute_features(splits.train.audio, params, backend=feature_backend)

    model, best_val, best_epoch = fit(config, splits, train_features, val_features,
                                      feature_backend=feature_backend, say=say)
    representative, train_clips = train_features, len(splits.train)
    if keywords != splits.labels:
        say(f"trained on {', '.join(splits.labels)}; keeping the outputs of {', '.join(keywords)}")
        all_labels = splits.labels
        keyword_train_features = train_features[splits.train.relabel_rows(keywords)[0]]
        keyword_val_features = val_features[splits.val.relabel_rows(keywords)[0]]
        splits = Splits(*(clips.relabel(keywords) for clips in (splits.train, splits.val, splits.test)))
        model, best_val = fit_keyword_head(config, model, all_labels, keywords, splits, keyword_train_features,
                                           keyword_val_features, feature_backend=feature_backend, say=say)
        val_features = keyword_val_features
    scale = None
    if config.calibrate_temperature:
        from train.toolbox.calibration import fold_logit_scale, logit_scale

        scale = logit_scale(model.predict(val_features[..., np.newaxis], batch_size=512, verbose=0),
                            splits.val.label_ids)
        fold_logit_scale(model, scale)
        say(f"logits scaled by {scale:.3f} (validation negative log-likelihood)")
    test_features = compute_features(splits.test.audio, params, backend=feature_backend)
    train_seconds = time.perf_counter() - started

    result = export_and_evaluate(model, config, splits.labels, output_path,
                                 representative=representative, test_features=test_features,
                                 test_label_ids=splits.test.label_ids, latency_runs=latency_runs,
                                 training_info={**(training_info or {}), "config": config.to_dict(),
                                                "train_clips": train_clips, "val_clips": len(splits.val),
                                                "selected_epoch": best_epoch,
                                                "val_accuracy": best_val,
                                                **({"logit_scale": scale} if scale is not None else {}),
                                                "train_seconds": round(train_seconds, 1)},
                                 say=say)
    result.val_accuracy = best_val
    result.best_epoch = best_epoch
    result.train_seconds = train_seconds
    result.run_seconds = time.perf_counter() - started
    update_results(result)
    return result


def _optimizer(learning_rate, weight_decay: float):
    """Adam, or AdamW decaying only the kernels (batch norm's scales and shifts and the biases keep
    their values: shrinking them changes what the layer computes, not how large its weights grow)."""
    from train.keras_env import keras

    if weight_decay <= 0:
        return keras.optimizers.Adam(learning_rate)
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def fit(config: RunConfig, splits: Splits, train_features: np.ndarray, val_features: np.ndarray, *,
        feature_backend: str = "native", say=log,
        build: Optional[Callable[..., object]] = None,
        on_epoch: Optional[Callable[[int, float], None]] = None):
    """Train (with pruning and QAT as configured); returns (model, best val accuracy, its epoch).

    Keeps the weights of the epoch with the best validation accuracy among
    those where pruning had reached its final sparsity. ``build(feature_shape,
    num_labels, feature_mean=, feature_std=)`` replaces the configuration's
    architecture (the search's candidates); ``on_epoch(epoch, val_accuracy)``
    is called after each epoch (the search's early stopping).
    """
    from train.keras_env import keras
    from train.toolbox.pruning import prune_low_magnitude, strip_pruning

    rng = np.random.default_rng(config.seed)
    feature_mean = float(train_features.mean())
    if build is None:
        model = config.build_model(len(splits.labels), train_features)
    else:
        model = build(config.model_input.feature_shape, len(splits.labels), **standardisation(train_features))
    steps_per_epoch = int(np.ceil(len(splits.train) / config.batch_size))
    callbacks = []
    pruning = config.final_sparsity > 0
    say(f"model {config.model} alpha={config.alpha}: {model.count_params()} parameters"
        + (f", pruning to {config.final_sparsity:.0%}" if pruning else ""))
    if pruning:
        model, callbacks = prune_low_magnitude(
            model, final_sparsity=config.final_sparsity, initial_sparsity=config.initial_sparsity,
            steps_per_epoch=steps_per_epoch, epochs=config.epochs,
            begin_fraction=config.pruning_begin_fraction, end_fraction=config.pruning_end_fraction)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps_per_epoch * config.epochs, alpha=0.01)
    model.compile(optimizer=_optimizer(schedule, config.weight_decay),
                  loss=_loss(len(splits.labels), config.label_smoothing), metrics=["accuracy"])
    teachers = clean_answers = None
    if config.teachers:
        from train.toolbox.distillation import Teachers, distillation_targets

        teachers = Teachers(teacher_paths(config), splits.labels, config.frontend)
        say(f"distilling from {', '.join(str(path) for path in teachers.paths)} "
            f"(weight {config.distillation_weight}, temperature {config.distillation_temperature}, "
            f"the teachers hearing the {config.distillation_input} clips)")
        if config.distillation_input == "clean":  # the same answers every epoch: computed once
            clean_answers = teachers.probabilities(train_features, temperature=config.distillation_temperature)
    # Model selection only once the masks are final (a denser checkpoint would be a different model).
    first_selectable_epoch = int(np.ceil(config.pruning_end_fraction * config.epochs)) if pruning else 0
    average = None
    if config.weight_average_decay > 0:
        from train.toolbox.weight_averaging import WeightAverage

        average = WeightAverage(config.weight_average_decay)
        callbacks = callbacks + [average]
        say(f"selecting from an exponential moving average of the weights (decay {config.weight_average_decay} "
            f"per step)")
    best_val, best_epoch, best_weights = -1.0, -1, None
    epoch_started = time.perf_counter()
    for epoch in range(config.epochs):
        if average is not None and epoch == first_selectable_epoch:
            average.reset()  # from here the masks are final: the average holds only pruned weights
        x, y = epoch_data(config, splits.train, train_features, rng, feature_mean, feature_backend)
        targets = _targets(y, len(splits.labels))
        if teachers is not None:
            answers = clean_answers if clean_answers is not None else teachers.probabilities(
                x[..., 0], temperature=config.distillation_temperature)
            targets = distillation_targets(targets, answers, weight=config.distillation_weight)
        if config.mixup_alpha > 0:
            x, targets = mix_up(x, targets, config.mixup_alpha, rng)
        history = model.fit(x, targets, batch_size=config.batch_size, epochs=epoch + 1,
                            initial_epoch=epoch, shuffle=True, verbose=0, callbacks=callbacks)
        val_accuracy = _keras_accuracy(model, val_features, splits.val.label_ids)
        selectable = epoch >= first_selectable_epoch or epoch == config.epochs - 1
        averaged = ""
        # With an average, the averaged weights compete instead of the step's (the step's are logged).
        with average.swapped_in() if average is not None else contextlib.nullcontext():
            if average is not None:
                averaged = f" (the step's weights {val_accuracy:.4f})"
                val_accuracy = _keras_accuracy(model, val_features, splits.val.label_ids)
            if selectable and val_accuracy > best_val:
                best_val, best_epoch, best_weights = val_accuracy, epoch, model.get_weights()
        say(f"  epoch {epoch + 1:3d}/{config.epochs}: loss {history.history['loss'][-1]:.3f} "
            f"train {history.history['accuracy'][-1]:.3f} val {val_accuracy:.4f}{averaged}"
            f"{' *' if best_epoch == epoch else ''}  [{time.perf_counter() - epoch_started:.0f} s]")
        if on_epoch is not None:
            on_epoch(epoch, val_accuracy)
    model.set_weights(best_weights)
    if pruning:
        model = strip_pruning(model)
    if config.qat_epochs > 0:
        model, best_val = _quantization_aware_finetune(config, splits, model, train_features, val_features,
                                                       rng, feature_mean, feature_backend, say)
    return model, best_val, best_epoch


def teacher_paths(config: RunConfig) -> Tuple[Path, ...]:
    """The teachers' model files; a relative path is under ``models/`` (e.g. ``kws/kws_b.tflite.zlib``)."""
    from train.paths import model_file

    paths = tuple(model_file(path) for path in config.teachers)
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise ValueError(f"teacher model(s) not found: {', '.join(missing)} (train them first)")
    return paths


def fit_keyword_head(config: RunConfig, model, labels: Sequence[str], keywords: Sequence[str], splits: Splits,
                     train_features: np.ndarray, val_features: np.ndarray, *,
                     feature_backend: str = "native", say=log):
    """A classifier of ``keywords`` from ``model``, a classifier of ``labels``; returns (model, val accuracy).

    The new output layer starts as the keywords' rows of the old one (its
    argmax is the old model's choice among the keywords), then, with the rest
    of the network frozen, is fine-tuned on the keywords' clips (``splits``
    and their features, already restricted to them) for up to
    ``config.head_epochs`` epochs; the epoch with the best validation accuracy
    is kept, the unchanged slice (epoch 0) included.
    """
    from train.keras_env import keras

    # A fresh copy: after pruning, layers can be shared with the pruned graph, whose tensors
    # would leak into the new model's graph.
    weights = model.get_weights()
    model = keras.models.clone_model(model)
    model.set_weights(weights)
    old_head = model.layers[-1]
    if not isinstance(old_head, keras.layers.Dense):
        raise ValueError(f"the model must end in a Dense layer, got {type(old_head).__name__}")
    rows = [list(labels).index(keyword) for keyword in keywords]
    for layer in model.layers:
        layer.trainable = False  # also puts batch norm in inference mode
    head = keras.layers.Dense(len(keywords), name="keyword_logits")
    keyword_model = keras.Model(model.input, head(old_head.input), name=f"{model.name}_keywords")
    kernel, bias = old_head.get_weights()
    head.set_weights([kernel[:, rows], bias[rows]])
    keyword_model.compile(optimizer=keras.optimizers.Adam(config.learning_rate * 0.1),
                          loss=_loss(len(keywords), config.label_smoothing), metrics=["accuracy"])
    best_val = _train_keeping_best(keyword_model, config, splits, train_features, val_features,
                                   epochs=config.head_epochs, rng=np.random.default_rng(config.seed + 1),
                                   feature_mean=float(train_features.mean()), feature_backend=feature_backend,
                                   say=say, name="head", start=f"slice of the {kernel.shape[1]}-word head")
    return keyword_model, best_val


def _quantization_aware_finetune(config, splits, model, train_features, val_features, rng, feature_mean,
                                 feature_backend, say):
    from train.keras_env import keras
    from train.toolbox.quantization import quantization_aware

    qat = quantization_aware(model, preserve_sparsity=config.final_sparsity > 0)
    steps = int(np.ceil(len(splits.train) / config.batch_size)) * config.qat_epochs
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate * 0.05, steps, alpha=0.01)
    qat.compile(optimizer=keras.optimizers.Adam(schedule),
                loss=_loss(len(splits.labels), config.label_smoothing), metrics=["accuracy"])
    best_val = _train_keeping_best(qat, config, splits, train_features, val_features, epochs=config.qat_epochs,
                                   rng=rng, feature_mean=feature_mean, feature_backend=feature_backend,
                                   say=say, name="QAT")
    return qat, best_val


def _train_keeping_best(model, config: RunConfig, splits: Splits, train_features: np.ndarray,
                        val_features: np.ndarray, *, epochs: int, rng: np.random.Generator, feature_mean: float,
                        feature_backend: str, say, name: str, start: Optional[str] = None) -> float:
    """Fine-tune a compiled ``model`` for ``epochs`` epochs of freshly augmented data, then restore the
    weights of the epoch with the best validation accuracy; returns that accuracy.

    With ``start`` (a description for the log), the weights before training compete as epoch 0;
    without it, at least one epoch of training is kept.
    """
    num_labels = len(splits.labels)
    best_val, best_epoch, best_weights = -1.0, -1, None
    if start is not None:
        best_val, best_epoch = _keras_accuracy(model, val_features, splits.val.label_ids), 0
        best_weights = model.get_weights()
        say(f"  {name} epoch   0/{epochs} ({start}): val {best_val:.4f}")
    for epoch in range(1, epochs + 1):
        x, y = epoch_data(config, splits.train, train_features, rng, feature_mean, feature_backend)
        model.fit(x, _targets(y, num_labels), batch_size=config.batch_size, epochs=epoch, initial_epoch=epoch - 1,
                  shuffle=True, verbose=0)
        val_accuracy = _keras_accuracy(model, val_features, splits.val.label_ids)
        if val_accuracy > best_val:
            best_val, best_epoch, best_weights = val_accuracy, epoch, model.get_weights()
        say(f"  {name} epoch {epoch:3d}/{epochs}: val {val_accuracy:.4f}{' *' if best_epoch == epoch else ''}")
    model.set_weights(best_weights)
    return best_val


def epoch_data(config: RunConfig, clips: ClipSet, clean_features: np.ndarray, rng: np.random.Generator,
               feature_mean: float, feature_backend: str) -> Tuple[np.ndarray, np.ndarray]:
    """Training inputs of one epoch: freshly augmented features, or the clean ones.

    Returns float32[n, frames, features, 1] and int label ids[n].
    """
    augment = config.augment
    features = clean_features
    if augment is not None:
        if augment.changes_audio or augment.vtlp_probability > 0:
            babble_rows = None
            if augment.babble_of_other_words:
                from train.kws.open_set import other_word_rows

                babble_rows = other_word_rows(clips)
            features = augmented_features(clips.audio, augment, config.frontend, rng, backend=feature_backend,
                                          babble_rows=babble_rows)
            if config.resize is not None:  # the frames of each augmented clip, resized as the model takes them
                from native.frontend import resize_bilinear

                features = np.stack([resize_bilinear(clip, config.resize) for clip in features])
        if augment.time_masks or augment.feature_masks:
            features = mask_features(features, augment, rng, fill_value=feature_mean)
    return features[..., np.newaxis], clips.label_ids


def _targets(label_ids: np.ndarray, num_labels: int) -> np.ndarray:
    return np.eye(num_labels, dtype=np.float32)[label_ids]


def _loss(num_labels: int, label_smoothing: float):
    from train.keras_env import keras

    return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)


def _keras_accuracy(model, features: np.ndarray, label_ids: np.ndarray) -> float:
    """Accuracy of the Keras model, for model selection on the validation split only."""
    if len(label_ids) == 0:
        return 0.0
    logits = model.predict(features[..., np.newaxis], batch_size=512, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == label_ids))


# -- export and evaluation -----------------------------------------------------------------
def export_and_evaluate(model, config: RunConfig, labels, output_path: Path, *, representative: np.ndarray,
                        test_features: np.ndarray, test_label_ids: np.ndarray, latency_runs: int = 100,
                        training_info: Optional[Dict[str, Any]] = None, say=log) -> RunResult:
    """Export ``model`` with its sidecar, then measure accuracy, size and latency on the file."""
    from pi_runtime.sidecar import KwsSpec
    from train.toolbox.export import export_model

    labels = list(labels)
    # The output kind is the exporter's to record: it reads it from the model.
    sidecar = KwsSpec(input=config.model_input, labels=tuple(labels)).to_sidecar(
        training=training_info or {"config": config.to_dict()}, results={})
    exported = export_model(model, output_path, quantization=config.quantization,
                            representative_data=representative[..., np.newaxis], compress=config.compress,
                            sidecar=sidecar)
    if exported.replaced:  # said even when quiet: a run over a delivered model is a way to reproduce it
        log(f"replacing {exported.path} and its sidecar with this run's")
    say(f"exported {exported.path} ({exported.size_bytes} bytes; .tflite {exported.tflite_bytes}, "
        f"zlib {exported.zlib_bytes})")
    result = measure_file(exported.path, labels, test_features, test_label_ids,
                          parameters=int(model.count_params()), latency_runs=latency_runs, say=say)
    update_results(result)
    return result


def measure_file(path: Path, labels: Sequence[str], test_features: np.ndarray, test_label_ids: np.ndarray, *,
                 parameters: int, latency_runs: int = 100, say=log) -> RunResult:
    """Accuracy on the test clips, size, sparsity and latency of the model file at ``path``.

    ``labels`` are the model's outputs; ``parameters`` is recorded as given (the file does not
    say how many the Keras model had). Validation accuracy and training time are left for the
    caller to fill in.
    """
    from pi_runtime.model import read_model_bytes
    from train.toolbox.export import ZLIB_LEVEL
    from train.toolbox.pruning import weight_sparsity

    labels = list(labels)
    flatbuffer = read_model_bytes(path)
    predictions = predict_file(path, test_features)
    test_label_ids = np.asarray(test_label_ids)
    accuracy = float(np.mean(predictions == test_label_ids))
    keywords = ~np.isin(test_label_ids, [labels.index(label) for label in NON_KEYWORD_LABELS if label in labels])
    keyword_accuracy = float(np.mean(predictions[keywords] == test_label_ids[keywords])) if keywords.any() else float("nan")
    unknown = test_label_ids == labels.index(UNKNOWN_LABEL) if UNKNOWN_LABEL in labels else np.zeros_like(keywords)
    unknown_accuracy = float(np.mean(predictions[unknown] == test_label_ids[unknown])) if unknown.any() else float("nan")
    inference_ms, total_ms = measure_latency(path, runs=latency_runs)
    say(f"test accuracy {accuracy:.2%} on {len(test_label_ids)} clips"
        + (f" ({keyword_accuracy:.2%} on the {int(keywords.sum())} keyword clips)" if not keywords.all() else "")
        + (f", {unknown_accuracy:.2%} of the {int(unknown.sum())} other words answered {UNKNOWN_LABEL}"
           if unknown.any() else "")
        + f"; inference {inference_ms['mean']:.3f} ms, total {total_ms['mean']:.2f} ms (mean of {latency_runs})")
    return RunResult(path=Path(path), accuracy=accuracy, val_accuracy=float("nan"),
                     size_bytes=Path(path).stat().st_size, tflite_bytes=len(flatbuffer),
                     zlib_bytes=len(zlib.compress(flatbuffer, ZLIB_LEVEL)), sparsity=weight_sparsity(path),
                     inference_ms=inference_ms, total_ms=total_ms, train_seconds=0.0, run_seconds=0.0,
                     num_test_clips=len(test_label_ids), best_epoch=-1, parameters=parameters,
                     keyword_accuracy=keyword_accuracy, num_keyword_clips=int(keywords.sum()),
                     unknown_accuracy=unknown_accuracy, num_unknown_clips=int(unknown.sum()))


def predict_file(model_path: Path, features: np.ndarray) -> np.ndarray:
    """Class ids (int[n]) the exported model predicts for ``features`` (float32[n, frames, features])."""
    from pi_runtime.model import load_model

    if len(features) == 0:
        raise ValueError("no clips to evaluate on")
    loaded = load_model(model_path, num_threads=1)
    return np.array([int(np.argmax(loaded.predict(example))) for example in features])


def evaluate_file(model_path: Path, features: np.ndarray, label_ids: np.ndarray) -> float:
    """Accuracy (0..1) of the exported model on ``features`` (float32[n, frames, features])."""
    return float(np.mean(predict_file(model_path, features) == np.asarray(label_ids)))


def measure_latency(model_path: Path, *, runs: int = 100) -> Tuple[Dict[str, float], Dict[str, float]]:
    """(inference, total) latency statistics in ms, one thread, as ``pi_runtime.latency`` measures them.

    Inference is ``invoke()`` alone; total is 1 s of random 48 kHz audio ->
    native resampler -> native frontend -> ``invoke()``.
    """
    from pi_runtime.latency import measure_native
    from pi_runtime.model import load_model

    timings = measure_native(load_model(model_path, num_threads=1), runs=runs, input_rate_hz=48000)
    return timings.inference, timings.total


def update_results(result: RunResult) -> None:
    """Write the measured results into the sidecar beside the delivered file."""
    from pi_runtime.sidecar import read_sidecar, write_sidecar

    sidecar = read_sidecar(result.path)
    sidecar["results"] = {
        "test_accuracy": round(result.accuracy, 5),
        "test_clips": result.num_test_clips,
        "keyword_accuracy": None if result.keyword_accuracy != result.keyword_accuracy else round(result.keyword_accuracy, 5),
        "keyword_clips": result.num_keyword_clips,
        **({"unknown_accuracy": round(result.unknown_accuracy, 5), "unknown_clips": result.num_unknown_clips}
           if result.num_unknown_clips else {}),
        "val_accuracy": None if result.val_accuracy != result.val_accuracy else round(result.val_accuracy, 5),
        "size_bytes": result.size_bytes,
        "tflite_bytes": result.tflite_bytes,
        "zlib_bytes": result.zlib_bytes,
        "weight_sparsity": round(result.sparsity, 4),
        "parameters": result.parameters,
        **latency_results(result.inference_ms, result.total_ms),
        "latency_method": "mean/median/p95 of runs on this machine, one thread; total = 1 s of random "
                          "48 kHz audio -> native resample -> native frontend -> invoke()",
        "measured_on": _machine(),
        "train_seconds": round(result.train_seconds, 1),
    }
    if "training" in sidecar and result.best_epoch >= 0:
        sidecar["training"]["selected_epoch"] = result.best_epoch
    write_sidecar(result.path, sidecar)


def latency_results(inference_ms: Dict[str, float], total_ms: Dict[str, float]) -> Dict[str, Dict[str, float]]:
    """The sidecar's latency entries, rounded as every delivered sidecar records them."""
    return {"inference_ms": {key: round(value, 4) for key, value in inference_ms.items()},
            "total_ms": {key: round(value, 3) for key, value in total_ms.items()}}


def _machine() -> str:
    import platform

    return f"{platform.machine()} {platform.processor() or platform.system()}"
