"""``python -m train.kws.ablation``: each augmentation and each frontend, alone, against a baseline recipe.

One change at a time is added to a baseline recipe (a version's model and
training, closed set, the eight words, with the course's MFCCs and the light
augmentation the versions were first delivered with); each variant is trained
for the same epochs and seed, exported (int8, zlib) and scored through ``pi_runtime`` on the **validation** split
only: clean, and under the conditions of :mod:`train.kws.robustness` (peak
levels, simulated rooms, babble and pink noise), plus the keywords spoken by
the validation synthetic voice. The test split is never read, so a change can
be kept or dropped on these numbers and the kept recipe measured on test once.

Variants are named by :data:`CHANGES`; ``a+b`` applies both changes (later
ones win where two set the same field). Results go to ``ablation.csv`` (one
row per variant, appended as each finishes; a rerun skips the variants already
there) and ``ablation.md`` in ``--output-dir``; the exported files beside them.
With ``--workers N`` (a local Ray) or ``--ray-address`` the variants run as
Ray tasks, as the sweep's points do.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from pi_runtime.arguments import non_negative_int, run_command
from train.kws.robustness import CONDITIONS, SYNTHETIC

DEFAULT_VARIANTS = ("baseline", "speed", "vtlp", "reverb", "gain", "microphone", "babble", "coloured_noise",
                    "specaugment", "synthetic_keywords", "log_mel_10", "pcen_10")
DEFAULT_EPOCHS = 20


@dataclass(frozen=True)
class Change:
    """One change to a recipe: fields of its ``AugmentConfig``, ``FrontendParams`` and ``RunConfig``
    (the model), and whether the training voices' synthetic keywords join the training clips."""

    description: str
    augment: Dict[str, Any] = field(default_factory=dict)
    frontend: Dict[str, Any] = field(default_factory=dict)
    model: Dict[str, Any] = field(default_factory=dict)
    synthetic_keywords: bool = False


# The strengths are the ranges; each part is applied to a share of the clips, so the clean
# words stay the most common input.
CHANGES: Dict[str, Change] = {
    "baseline": Change("the course's MFCCs (40 mel bins, 10 coefficients), time shift up to 100 ms, white noise "
                       "on 80 % of clips, one time mask of up to 5 frames: the recipe of the versions until "
                       "2026-12-02, which every variant changes"),
    "none": Change("no augmentation at all",
                   augment=dict(time_shift_ms=0.0, noise_probability=0.0, time_masks=0, feature_masks=0)),
    "speed": Change("speed perturbation 0.9-1.1 on half the clips", augment=dict(speed_probability=0.5)),
    "speed_wide": Change("speed perturbation 0.8-1.2 on half the clips",
                         augment=dict(speed_probability=0.5, min_speed=0.8, max_speed=1.2)),
    "vtlp": Change("vocal tract length perturbation (mel axis warped by 0.9-1.1) on half the clips",
                   augment=dict(vtlp_probability=0.5)),
    "reverb": Change("a simulated room (RT60 0.2-1.0 s) for 30 % of clips", augment=dict(reverb_probability=0.3)),
    "gain": Change("half the clips scaled to a peak of -45..0 dBFS",
                   augment=dict(gain_probability=0.5, gain_to_peak_dbfs=True, min_gain_db=-45.0, max_gain_db=0.0)),
    "microphone": Change("30 % of clips band-limited (high-pass 50-400 Hz, low-pass 3-7.6 kHz) and tilted "
                         "(+-3 dB per octave)", augment=dict(microphone_probability=0.3)),
    "babble": Change("babble of 4 other clips at 5-20 dB SNR on 30 % of clips", augment=dict(babble_probability=0.3)),
    "babble_heavy": Change("babble of 4 other clips at 5-20 dB SNR on 60 % of clips",
                           augment=dict(babble_probability=0.6)),
    "babble_low_snr": Change("babble of 4 other clips at 0-15 dB SNR (coloured noise too, where used) on 30 % of clips",
                             augment=dict(babble_probability=0.3, min_snr_db=0.0, max_snr_db=15.0)),
    "babble_in_room": Change("babble or noise added before the room, so a clip drawn for both hears the talkers "
                             "ring in its room", augment=dict(noise_in_room=True)),
    "reverb_often": Change("a simulated room (RT60 0.2-1.0 s) for 60 % of clips instead of 30 %",
                           augment=dict(reverb_probability=0.6)),
    "coloured_noise": Change("white, pink or brown noise at 5-20 dB SNR on 30 % of clips",
                             augment=dict(coloured_noise_probability=0.3)),
    "specaugment": Change("SpecAugment: two time masks of up to 8 frames and one feature mask of up to 2 "
                          "coefficients", augment=dict(time_masks=2, time_mask_max_frames=8, feature_masks=1,
                                                       feature_mask_max_bins=2)),
    "synthetic_keywords": Change("the training voices' synthetic keywords (flite/festival) as extra training clips",
                                 synthetic_keywords=True),
    "log_mel_10": Change("log-mel features on 10 mel bins instead of 10 MFCCs",
                         frontend=dict(feature_kind="log_mel", num_mel_bins=10)),
    "pcen_10": Change("PCEN features on 10 mel bins instead of 10 MFCCs",
                      frontend=dict(feature_kind="pcen", num_mel_bins=10)),
    "pcen_20": Change("PCEN features on 20 mel bins instead of 10 MFCCs",
                      frontend=dict(feature_kind="pcen", num_mel_bins=20)),
    "pcen_40": Change("PCEN features on 40 mel bins instead of 10 MFCCs",
                      frontend=dict(feature_kind="pcen", num_mel_bins=40)),
    "wideband": Change("mel filters up to 8 kHz instead of 4 kHz", frontend=dict(upper_edge_hz=8000.0)),
    # PCEN's own settings (defaults: Wang et al. 2017), each alone; they need a pcen_* change before them.
    "pcen_fast": Change("PCEN's smoothing time constant 100 ms instead of 395 ms (a faster gain control)",
                        frontend=dict(pcen_time_constant_ms=100.0)),
    "pcen_slow": Change("PCEN's smoothing time constant 1000 ms instead of 395 ms (a slower gain control)",
                        frontend=dict(pcen_time_constant_ms=1000.0)),
    "pcen_alpha_0.8": Change("PCEN's gain exponent 0.8 instead of 0.98 (less of the level removed)",
                             frontend=dict(pcen_alpha=0.8)),
    "pcen_power_0.25": Change("PCEN's root 0.25 instead of 0.5 (stronger compression)",
                              frontend=dict(pcen_power=0.25)),
    # The frames' timing: 40 ms frames every 20 ms are MLPerf Tiny's; a finer step gives the convolutions twice
    # the frames (and twice the work) over the same second.
    "frame_step_10ms": Change("frames every 10 ms instead of 20 ms (97 frames of a one-second clip instead of "
                              "49, 40 ms long)", frontend=dict(frame_step_samples=160)),
    "frame_25ms_step_10ms": Change("frames 25 ms long every 10 ms instead of 40 ms every 20 ms (the classic "
                                   "speech-recognition framing; 512-point FFT)",
                                   frontend=dict(frame_length_samples=400, frame_step_samples=160,
                                                 fft_length=512)),
    # The DS-CNN's kernels: 3 x 3 everywhere sees about 19 frames (0.38 s) before the global pooling.
    "first_kernel_10x4": Change("the first convolution 10 x 4 (time x frequency, as MLPerf Tiny's DS-CNN) "
                                "instead of 3 x 3", model=dict(first_kernel=(10, 4))),
    "kernel_5": Change("depthwise convolutions 5 x 5 instead of 3 x 3 (about 35 frames seen, 0.7 s)",
                       model=dict(kernel_size=5)),
    # Regularisation as MLPerf Tiny's DS-CNN has it (an L2 penalty there; decoupled decay here, AdamW).
    "weight_decay_0.01": Change("decoupled weight decay 0.01 of the kernels (AdamW) instead of none",
                                model=dict(weight_decay=0.01)),
    "weight_decay_0.05": Change("decoupled weight decay 0.05 of the kernels (AdamW) instead of none",
                                model=dict(weight_decay=0.05)),
    "bn_after_depthwise": Change("batch norm and ReLU after each depthwise convolution too, as MLPerf Tiny's DS-CNN "
                                 "(a non-linearity between the depthwise and pointwise halves of each block)",
                                 model=dict(model="ds_cnn_bn")),
    "first_stride_2x1": Change("the first convolution's stride 2 x 1 instead of 2 x 2 (every mel band kept: "
                               "the same weights, twice the work after it)", model=dict(first_stride=(2, 1))),
    # The pooling before the output layer: the average dilutes a word's evidence with the frames around it.
    "pooling_max": Change("global max pooling before the output layer instead of the average",
                          model=dict(global_pooling="max")),
    "pooling_average_max": Change("global average and max pooling, concatenated, before the output layer "
                                  "(twice the output layer's inputs)", model=dict(global_pooling="average_max")),
}

COLUMNS = (("variant", "version", "epochs", "seed", "description", "val_accuracy", "keras_val_accuracy",
            "best_epoch", "size_bytes", "train_seconds")
           + tuple(condition.name for condition in CONDITIONS[1:]) + (SYNTHETIC, "worst synthetic word"))


def variant_changes(name: str) -> List[Change]:
    """The changes of variant ``name`` ("babble" or "babble+gain"), validated."""
    parts = [part.strip() for part in name.split("+")]
    unknown = [part for part in parts if part not in CHANGES]
    if not name.strip() or unknown:
        raise ValueError(f"unknown variant part(s) {', '.join(repr(part) for part in unknown) or repr(name)}; "
                         f"choose from {', '.join(CHANGES)} (joined with +)")
    return [CHANGES[part] for part in parts]


def variant_config(version: str, name: str, *, epochs: int, seed: int):
    """(RunConfig, synthetic keywords?) of variant ``name`` on ``version``'s closed-set recipe.

    Distillation and the logit rescaling of version a are left out: they need the delivered teachers, and
    the ablation compares augmentation and features, not them.
    """
    from train.kws.augment import AugmentConfig
    from train.kws.versions import MFCC_FRONTEND, VERSIONS

    if version not in VERSIONS:
        raise ValueError(f"unknown version {version!r}; choose from {', '.join(VERSIONS)}")
    # Every variant starts from the MFCC baseline, whatever the version delivers now, so rows stay comparable.
    config = VERSIONS[version].base_config.replace(epochs=epochs, seed=seed, teachers=(), calibrate_temperature=False)
    augment, frontend, synthetic = AugmentConfig(), MFCC_FRONTEND, False
    changes = variant_changes(name)
    for change in changes:
        augment = augment.replace(**change.augment)
        frontend = dataclasses.replace(frontend, **change.frontend)
        config = config.replace(**change.model)
        synthetic = synthetic or change.synthetic_keywords
    if frontend.feature_kind != "pcen" and any(key.startswith("pcen_") for change in changes
                                               for key in change.frontend):
        pcen_features = [key for key, change in CHANGES.items() if change.frontend.get("feature_kind") == "pcen"]
        raise ValueError(f"variant {name!r} changes PCEN's settings but its features are {frontend.feature_kind}; "
                         f"put {' or '.join(pcen_features)} before it (e.g. pcen_10+pcen_fast)")
    return config.replace(augment=augment, frontend=frontend), synthetic


def describe(name: str) -> str:
    return "; ".join(change.description for change in variant_changes(name))


# -- one variant ----------------------------------------------------------------------------------
def train_variant(name: str, version: str, epochs: int, seed: int, data_dir: Path, output_dir: Path,
                  verbose: bool = False) -> Dict[str, Any]:
    """Train, export and score variant ``name`` on the validation split; returns its CSV row."""
    from pi_runtime.sidecar import KwsSpec
    from train.keras_env import tf
    from train.kws.data import LABELS, load_split
    from train.kws.features import compute_features
    from train.kws.negatives import synthetic_keywords
    from train.kws.open_set import NEGATIVES_SEED, synthetic_keyword_clips
    from train.kws.robustness import score_models
    from train.kws.training import Splits, fit, log
    from train.toolbox.export import export_model

    say = log if verbose else (lambda message: None)
    started = time.perf_counter()
    config, synthetic = variant_config(version, name, epochs=epochs, seed=seed)
    tf.keras.utils.set_random_seed(config.seed)
    train = load_split("train", data_dir=data_dir, labels=LABELS)
    val = load_split("val", data_dir=data_dir, labels=LABELS)
    if synthetic:
        train = train.concat(synthetic_keyword_clips("train", LABELS, data_dir=data_dir))
    params = config.model_input
    train_features = compute_features(train.audio, params)
    val_features = compute_features(val.audio, params)
    # fit reads training and validation only; the test split is never loaded here.
    model, keras_val, best_epoch = fit(config, Splits(train, val, val), train_features, val_features, say=say)
    train_seconds = time.perf_counter() - started
    path = Path(output_dir) / f"{file_stem(name)}.tflite"
    sidecar = KwsSpec(input=params, labels=tuple(LABELS)).to_sidecar(
        training={"config": config.to_dict(), "ablation_variant": name, "selected_epoch": best_epoch,
                  "val_accuracy": keras_val, "synthetic_keywords": synthetic}, results={})
    exported = export_model(model, path, quantization=config.quantization,
                            representative_data=train_features[..., np.newaxis], compress=config.compress,
                            sidecar=sidecar)
    voice = synthetic_keywords("val", data_dir=data_dir, seed=NEGATIVES_SEED)
    (result,) = score_models([exported.path], val.audio, [val.labels[i] for i in val.label_ids], list(val.paths),
                             synthetic=voice, say=say)
    worst_word, worst = min(result.evaluations[SYNTHETIC].word_accuracy().items(), key=lambda item: item[1])
    row = {"variant": name, "version": version, "epochs": epochs, "seed": seed, "description": describe(name),
           "val_accuracy": round(result.accuracy("clean"), 5), "keras_val_accuracy": round(keras_val, 5),
           "best_epoch": best_epoch + 1, "size_bytes": exported.size_bytes, "train_seconds": round(train_seconds),
           "worst synthetic word": f"{worst_word} {100 * worst:.1f}"}
    row.update({condition.name: round(result.accuracy(condition.name), 5) for condition in CONDITIONS[1:]})
    row[SYNTHETIC] = round(result.accuracy(SYNTHETIC), 5)
    return row


def file_stem(name: str) -> str:
    return "kws_ablation_" + name.replace("+", "_plus_")


# -- running and reporting ------------------------------------------------------------------------
def run_ablation(variants: Sequence[str], csv_path: Path, *, version: str, epochs: int, seed: int, data_dir: Path,
                 cluster=None, variant_function: Callable[..., Dict] = train_variant,
                 say: Callable[[str], None] = lambda message: None) -> List[str]:
    """Train every variant not yet in ``csv_path`` (in this process, or as Ray tasks on ``cluster``); each
    finished row is appended at once. Returns the variants that failed (with the reason said)."""
    from train.sweep import append_rows

    done = {(row["variant"], row["version"], row["epochs"], row["seed"]) for row in read_rows(csv_path)}
    todo = [name for name in variants if (name, version, str(epochs), str(seed)) not in done]
    say(f"ablation: {len(variants)} variants of version {version}, {len(variants) - len(todo)} already in "
        f"{csv_path}, {len(todo)} to train ({epochs} epochs, seed {seed})")
    output_dir = Path(csv_path).parent
    failed: List[str] = []
    started = time.perf_counter()

    def record(name: str, outcome) -> None:
        if isinstance(outcome, BaseException):
            failed.append(name)
            say(f"ablation: {name} failed: {type(outcome).__name__}: {outcome}")
            return
        append_rows(csv_path, [outcome], COLUMNS)
        say(f"ablation: {name}: validation {100 * float(outcome['val_accuracy']):.2f} %, "
            f"babble 10 dB {100 * float(outcome['babble 10 dB SNR']):.1f} %, synthetic voice "
            f"{100 * float(outcome[SYNTHETIC]):.1f} % [{len(read_rows(csv_path))} rows, "
            f"{time.perf_counter() - started:.0f} s]")

    arguments = (version, epochs, seed, Path(data_dir), output_dir)
    if cluster is None:
        for name in todo:
            try:
                outcome = variant_function(name, *arguments, verbose=True)
            except (ValueError, RuntimeError, OSError) as error:
                outcome = error
            record(name, outcome)
        return failed
    import ray

    from train.sweep import connect_ray, record_as_done, run_in_worker

    started_here = connect_ray(cluster)
    pending: Dict = {}
    try:
        task = ray.remote(run_in_worker).options(num_cpus=cluster.cpus_per_point, max_retries=1,
                                                          retry_exceptions=False)
        # verbose: each task's epochs go to its worker's log (Ray's session logs), not to this terminal.
        pending = {task.remote(variant_function, cluster.cpus_per_point, name, *arguments, verbose=True): name
                   for name in todo}
        record_as_done(pending, record, timeout_s=30.0)
        return failed
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def read_rows(csv_path: Path) -> List[Dict[str, str]]:
    """Rows of an ablation CSV ([] when absent; a last line cut short is left out)."""
    from train.sweep import read_csv_rows

    return read_csv_rows(csv_path, COLUMNS, "an ablation CSV")


def format_report(rows: Sequence[Dict[str, str]], *, command: str) -> str:
    """The markdown table of ``rows``: validation accuracy (%) per condition, and the difference to the
    baseline of the same version, epochs and seed."""
    from train.kws.robustness import BARS

    columns = ["clean"] + [condition.name for condition in CONDITIONS[1:]] + [SYNTHETIC]
    bars = dict(BARS)
    lines = ["# Augmentation and features, one change at a time (validation split only)", "",
             f"Generated by `{command}` from `ablation.csv`; `python -m train.kws.ablation --version V --epochs E "
             "--variants NAME` retrains a row. Each variant is the baseline recipe (the version's model, closed "
             "set, no distillation) with the changes named, trained for the same epochs and seed, exported "
             "(int8, zlib) and scored "
             "through `pi_runtime` on the 800 validation clips under the conditions of "
             "`python -m train.kws.robustness` (seed 0) and on the keywords of the validation synthetic voice. "
             "The test split is not read. One run each: on 800 clips one clip is 0.125 pp and the standard "
             "error of a clean accuracy near 95 % about 0.8 pp.", "",
             "| variant | " + " | ".join(columns) + " | worst synthetic word | size (kB) | best epoch |",
             "| --- | " + " | ".join("---:" for _ in columns) + " | --- | ---: | ---: |"]
    baselines = {(row["version"], row["epochs"], row["seed"]): row for row in rows if row["variant"] == "baseline"}

    def value(row, column):
        return float(row["val_accuracy" if column == "clean" else column])

    for row in rows:
        base = baselines.get((row["version"], row["epochs"], row["seed"]))
        cells = []
        for column in columns:
            text = f"{100 * value(row, column):.1f}"
            if base is not None and base is not row:
                text += f" ({100 * (value(row, column) - value(base, column)):+.1f})"
            cells.append(text)
        size_kb = int(row["size_bytes"]) / 1000
        seed = "" if row["seed"] == "0" else f", seed {row['seed']}"
        lines.append(f"| {row['variant']} ({row['version']}, {row['epochs']} ep{seed}) | " + " | ".join(cells)
                     + f" | {row['worst synthetic word']} | {size_kb:.1f} | {row['best_epoch']} |")
    lines += ["", "In brackets: the difference to `baseline` (same version, epochs and seed) in points. "
              "The robustness bars, measured on the test split by `python -m train.kws.robustness`: "
              + ", ".join(f"{name} >= {100 * bar:.0f} %" for name, bar in bars.items()) + ".", "",
              "Variants:", ""]
    for name in dict.fromkeys(row["variant"] for row in rows):
        lines.append(f"* `{name}`: {describe(name)}")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.kws.ablation", description=__doc__.split("\n\n")[0].strip("`"),
        epilog="Example: python -m train.kws.ablation --version b --epochs 20 --workers 2\n"
               "         python -m train.kws.ablation --variants baseline,babble+gain",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated variants, each a change or changes joined with + (default: "
                             f"{','.join(DEFAULT_VARIANTS)}; all: {', '.join(CHANGES)})")
    parser.add_argument("--version", default="b", help="whose recipe and model (default: b)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                        help=f"epochs of every variant (default: {DEFAULT_EPOCHS})")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of every variant (default: 0)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding mini_speech_commands/ "
                             "(default: $TINYML_DATA_DIR or ~/.cache/tinyml-pi)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where ablation.csv, ablation.md and the models go (default: models/kws/ablation)")
    parser.add_argument("--report-only", action="store_true", help="rewrite ablation.md from the CSV; train nothing")
    ray_group = parser.add_argument_group("Ray (pip install -e '.[cluster]')")
    ray_group.add_argument("--workers", type=int, default=None, help="start a local Ray running N variants at once")
    ray_group.add_argument("--ray-address", default=None, help="join an existing Ray cluster (or 'auto')")
    ray_group.add_argument("--cpus-per-point", type=float, default=1.0,
                           help="CPUs each variant's task asks for (default: 1)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from train.paths import models_dir

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    output_dir = args.output_dir if args.output_dir is not None else models_dir() / "kws" / "ablation"
    csv_path = output_dir / "ablation.csv"
    command = "python -m train.kws.ablation " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        variants = [name.strip() for name in args.variants.split(",") if name.strip()]
        if not variants:
            raise ValueError("--variants names no variant")
        if args.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
        for name in variants:  # every name and the version, before any data is read
            variant_config(args.version, name, epochs=args.epochs, seed=args.seed)
        if not args.report_only:
            from train.kws.data import ensure_dataset

            cluster = None
            if args.workers is not None or args.ray_address is not None:
                from train.sweep import RayCluster, require_ray

                require_ray()
                cluster = RayCluster(workers=args.workers, address=args.ray_address,
                                     cpus_per_point=args.cpus_per_point)
            data_dir = ensure_dataset(args.data_dir)
            output_dir.mkdir(parents=True, exist_ok=True)
            failed = run_ablation(variants, csv_path, version=args.version, epochs=args.epochs, seed=args.seed,
                                  data_dir=data_dir, cluster=cluster, say=say)
        else:
            failed = []
        rows = read_rows(csv_path)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: no results in {csv_path}", file=sys.stderr)
        return 2
    report = output_dir / "ablation.md"
    report.write_text(format_report(rows, command=command))
    say(f"wrote {report}")
    print(report.read_text())
    return 1 if failed else 0


if __name__ == "__main__":
    run_command(main)
