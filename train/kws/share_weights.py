"""``python -m train.kws.share_weights SOURCE --version V``: a smaller version made from a delivered file.

Takes an exported full-integer keyword model (``.tflite`` or ``.tflite.zlib``
with its sidecar), requantises its weights to one scale per tensor and lets each
weight tensor keep a few shared values (``train.toolbox.weight_sharing``), once
for each number of values in ``--levels``. No retraining: the network is the
source's. Of the candidates whose file is under the version's size limit, the
one with the highest accuracy on the validation split is delivered (ties: the
fewer values, the smaller file), its logits scaled as the version's recipe
scales them (``calibrate_temperature``: the factor that minimises the
validation negative log-likelihood, folded into the output layer's scales), as ``models/kws/kws_<V>`` with a sidecar that
names its source and every candidate's size and validation accuracy. Then the
delivered file is measured as ``python -m train.kws`` measures a trained one
(test accuracy, size, latency), the limits table is printed, and the command
exits with status 1 when a limit is missed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from pi_runtime.arguments import output_folder, positive_int, run_command

DEFAULT_LEVELS = (8, 12, 16, 20, 24, 32, 48, 64, 96, 128)


def parse_levels(text: str) -> List[int]:
    """``"16,24,32"`` -> [16, 24, 32]: distinct integers >= 2, in the order given."""
    from train.toolbox.weight_sharing import MIN_LEVELS

    levels = []
    for item in text.split(","):
        item = item.strip()
        try:
            value = int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected integers >= {MIN_LEVELS} separated by commas, "
                                             f"got {item!r}") from None
        if value < MIN_LEVELS:
            raise argparse.ArgumentTypeError(f"expected integers >= {MIN_LEVELS}, got {value}")
        if value in levels:
            raise argparse.ArgumentTypeError(f"{value} is named twice")
        levels.append(value)
    return levels


def build_parser() -> argparse.ArgumentParser:
    from train.kws.versions import VERSIONS

    parser = argparse.ArgumentParser(prog="python -m train.kws.share_weights", description=__doc__.split("\n\n")[0],
                                     epilog="Example: python -m train.kws.share_weights models/kws/kws_c.tflite.zlib "
                                            "--version a")
    parser.add_argument("source", type=Path, help="the exported int8 model to start from (sidecar beside it)")
    parser.add_argument("--version", choices=sorted(VERSIONS), required=True,
                        help="the deliverable to make: its size limit bounds the candidates, its limits are checked")
    parser.add_argument("--levels", type=parse_levels, default=list(DEFAULT_LEVELS),
                        help="the numbers of shared values per weight tensor to try, comma-separated "
                             f"(default: {','.join(map(str, DEFAULT_LEVELS))})")
    parser.add_argument("--output-dir", type=output_folder, default=None,
                        help="where to write kws_<version> and its sidecar (default: models/kws)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the folder holding mini_speech_commands/ (default: $TINYML_DATA_DIR or "
                             "~/.cache/tinyml-pi; downloaded there when absent)")
    parser.add_argument("--latency-runs", type=positive_int, default=100,
                        help="inferences timed for the latency figures (default: 100)")
    parser.add_argument("--quiet", action="store_true", help="print only the choice and the limits table")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from pi_runtime.model import ModelError, read_model_bytes
    from pi_runtime.sidecar import KwsSpec, SidecarError, read_sidecar, sidecar_path

    source = args.source
    try:
        flatbuffer = read_model_bytes(source)
        sidecar = read_sidecar(source)
        spec = KwsSpec.from_sidecar(sidecar, source=str(sidecar_path(source)))
    except (ModelError, SidecarError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return share_weights(source, flatbuffer, sidecar, spec, args, argv)


def share_weights(source: Path, flatbuffer: bytes, sidecar: Dict, spec, args: argparse.Namespace,
                  argv: Optional[Sequence[str]]) -> int:
    """Make, choose, deliver and measure the version (see the module docstring); returns the exit status."""
    from pi_runtime.sidecar import write_sidecar
    from train.kws.data import LABELS, ensure_dataset, load_split
    from train.kws.features import compute_features
    from train.kws.negatives import file_sha256
    from train.kws.results import write_results_markdown
    from train.kws.training import log, measure_file, update_results
    from train.kws.versions import KB, VERSIONS, limits_for, model_file_stem
    from train.paths import models_dir
    from train.toolbox.export import ZLIB_LEVEL
    from train.toolbox.limits import check_limits
    from train.toolbox.calibration import logit_scale
    from train.toolbox.weight_sharing import distinct_weight_values, scale_output_logits, weight_sharing

    started = time.perf_counter()
    say = (lambda message: None) if args.quiet else log
    version = VERSIONS[args.version]
    labels = list(spec.labels)
    compress = source.name.endswith(".zlib")
    output_dir = args.output_dir or models_dir() / "kws"
    output_path = output_dir / (model_file_stem(args.version, labels, LABELS) + ".tflite" + (".zlib" if compress else ""))
    if output_path.resolve() == source.resolve():
        print(f"error: {output_path} is the source itself: deliver the version to another folder (--output-dir)",
              file=sys.stderr)
        return 2
    if not distinct_weight_values(flatbuffer):
        print(f"error: {source} has no int8 weight tensors to share (a full-integer model is needed)",
              file=sys.stderr)
        return 2
    try:
        data_dir = ensure_dataset(args.data_dir)
        val = load_split("val", data_dir=data_dir, labels=labels, progress=not args.quiet)
        test = load_split("test", data_dir=data_dir, labels=labels, progress=not args.quiet)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    val_features = compute_features(val.audio, spec.input)

    limit_bytes = version.max_size_kb * KB
    candidates, logits = [], {}
    for levels in args.levels:
        shared = weight_sharing(flatbuffer, levels)
        stored = zlib.compress(shared, ZLIB_LEVEL) if compress else shared
        candidate = {"levels": levels, "size_bytes": len(stored)}
        if len(stored) < limit_bytes:
            logits[levels] = _file_logits(shared, sidecar, val_features)
            candidate["val_accuracy"] = round(float(np.mean(np.argmax(logits[levels], axis=1) == val.label_ids)), 5)
        say(f"{levels:4d} values per tensor: {len(stored)} bytes, "
            + (f"validation {100 * candidate['val_accuracy']:.2f} %" if "val_accuracy" in candidate
               else f"over the {version.max_size_kb:g} kB limit"))
        candidates.append((candidate, shared))
    fitting = [(candidate, shared) for candidate, shared in candidates if "val_accuracy" in candidate]
    if not fitting:
        print(f"error: no candidate is under {version.max_size_kb:g} kB (smallest: "
              f"{min(candidate['size_bytes'] for candidate, _ in candidates)} bytes); try fewer --levels",
              file=sys.stderr)
        return 1
    chosen, shared = max(fitting, key=lambda item: (item[0]["val_accuracy"], -item[0]["levels"]))
    print(f"chosen on validation: {chosen['levels']} values per weight tensor ({chosen['size_bytes']} bytes, "
          f"{100 * chosen['val_accuracy']:.2f} %)")
    scale = None
    if version.config.calibrate_temperature:  # same answers, probabilities a fixed threshold can read
        scale = logit_scale(logits[chosen["levels"]], val.label_ids)
        shared = scale_output_logits(shared, scale)
        say(f"logits scaled by {scale:.3f} (validation negative log-likelihood)")
    stored = zlib.compress(shared, ZLIB_LEVEL) if compress else shared

    output_dir.mkdir(parents=True, exist_ok=True)
    if output_path.exists():
        log(f"replacing {output_path} and its sidecar")
    output_path.write_bytes(stored)
    other = output_path.with_name(output_path.name[:-len(".zlib")]) if compress else output_path.with_name(
        output_path.name + ".zlib")
    if other.exists():  # a stale file of the other kind would be loaded by mistake
        other.unlink()
    source_training = sidecar.get("training", {})
    command = "python -m train.kws.share_weights " + " ".join(sys.argv[1:] if argv is None else argv)
    training = {
        "command": command, "version": args.version,
        "derived_from": {"model": _shown(source), "sha256": file_sha256(source),
                         "command": source_training.get("command")},
        "weight_sharing": {"per_tensor": True, "levels": chosen["levels"],
                           "candidates": [candidate for candidate, _ in candidates]},
        "config": source_training.get("config", {}),
        "val_accuracy": chosen["val_accuracy"],
        **({"logit_scale": scale} if scale is not None else {}),
    }
    write_sidecar(output_path, {**{key: value for key, value in sidecar.items() if key not in ("training", "results")},
                                "training": training, "results": {}})
    test_features = compute_features(test.audio, spec.input)
    result = measure_file(output_path, labels, test_features, test.label_ids,
                          parameters=int(sidecar.get("results", {}).get("parameters", 0)),
                          latency_runs=args.latency_runs, say=say)
    result.val_accuracy = chosen["val_accuracy"]
    # The network's training is the source's; sharing its weights takes seconds.
    result.train_seconds = float(sidecar.get("results", {}).get("train_seconds", 0.0))
    update_results(result)
    print(f"\nkws version {args.version} from {source} -> {output_path}")
    passed = check_limits(limits_for(version, result, labels))
    print(f"results table: {write_results_markdown(output_dir)}")
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0 if passed else 1


def _file_logits(flatbuffer: bytes, sidecar: Dict, features):
    """The outputs (float[n, labels]) of the model ``flatbuffer`` for ``features``, through ``pi_runtime``."""
    from pi_runtime.model import load_model
    from pi_runtime.sidecar import write_sidecar

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(flatbuffer)
        write_sidecar(path, sidecar)
        model = load_model(path, num_threads=1)
        return model.predict_many(features).reshape(len(features), -1)


def _shown(path: Path) -> str:
    """``kws/kws_c.tflite.zlib`` for a delivered model (as recipes name teachers), else the path given."""
    from train.paths import models_dir

    try:
        return Path(path).resolve().relative_to(models_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


if __name__ == "__main__":
    run_command(main)
