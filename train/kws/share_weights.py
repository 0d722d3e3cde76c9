"""``python -m train.kws.share_weights SOURCE... --version V``: a version made from delivered files.

Takes an exported full-integer keyword model (``.tflite`` or ``.tflite.zlib``
with its sidecar), requantises its weights to one scale per tensor and lets each
weight tensor keep a few shared values (``train.toolbox.weight_sharing``), once
for each number of values in ``--levels``. No retraining: the network is the
source's. With several sources (of the same labels and features), each is
shared so and one file answers the mean of their logits
(``train.toolbox.ensemble``). Of the candidates whose file is under the version's size limit, the
one with the highest accuracy on the validation split is delivered (ties: the
fewer values), its logits scaled as the version's recipe scales them
(``calibrate_temperature``: the factor that minimises the validation negative
log-likelihood, folded into the output layer's scales, before the size is
measured), as ``models/kws/kws_<V>`` with a sidecar that
names its sources and every candidate's size and validation accuracy. Then the
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
    parser.add_argument("sources", type=Path, nargs="+", metavar="SOURCE",
                        help="the exported int8 model to start from (sidecar beside it); several: their ensemble")
    parser.add_argument("--version", choices=sorted(VERSIONS), required=True,
                        help="the deliverable to make: its size limit bounds the candidates, its limits are checked")
    parser.add_argument("--keywords", default=None,
                        help="keep only these outputs of the source, comma-separated (e.g. go,stop: delivered as "
                             "kws_<version>_go_stop, its subset's bar checked); default: all of them")
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
    parser.add_argument("--validation-only", action="store_true",
                        help="write the chosen file to --output-dir without reading the test split (no results, "
                             "no limits): to compare it with a delivered model on validation first")
    parser.add_argument("--quiet", action="store_true", help="print only the choice and the limits table")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.validation_only:
        from train.paths import models_dir

        if args.output_dir is None or args.output_dir.resolve() == (models_dir() / "kws").resolve():
            parser.error("--validation-only needs an --output-dir other than models/kws (the delivered models are "
                         "measured on test)")
    from pi_runtime.model import ModelError, read_model_bytes
    from pi_runtime.sidecar import KwsSpec, SidecarError, read_sidecar, sidecar_path
    from pi_runtime.labels import NON_KEYWORD_LABELS
    from train.kws.data import parse_keywords
    from train.toolbox.weight_sharing import keep_outputs

    flatbuffers, sidecars, specs, source_labels = [], [], [], None
    try:
        for source in args.sources:
            flatbuffer, sidecar = read_model_bytes(source), read_sidecar(source)
            spec = KwsSpec.from_sidecar(sidecar, source=str(sidecar_path(source)))
            source_labels = source_labels or list(spec.labels)
            if args.keywords is not None:
                if set(spec.labels) & set(NON_KEYWORD_LABELS):
                    raise ValueError(f"--keywords keeps outputs of a closed-set model; {source} also answers "
                                     f"{', '.join(label for label in spec.labels if label in NON_KEYWORD_LABELS)}")
                keywords = parse_keywords(args.keywords)
                missing = [word for word in keywords if word not in spec.labels]
                if missing:
                    raise ValueError(f"{source} has no output for {', '.join(missing)}")
                if keywords != spec.labels:
                    flatbuffer = keep_outputs(flatbuffer, [spec.labels.index(word) for word in keywords])
                    sidecar = {**sidecar, "labels": list(keywords), "keywords": list(keywords)}
                    spec = KwsSpec.from_sidecar(sidecar)
            specs.append(spec)
            if (spec.labels, spec.input) != (specs[0].labels, specs[0].input):
                raise ValueError(f"{source} answers other labels or takes other features than {args.sources[0]}: "
                                 "an ensemble's members must agree")
            flatbuffers.append(flatbuffer)
            sidecars.append(sidecar)
    except (ModelError, SidecarError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return share_weights(args.sources, flatbuffers, sidecars, specs[0], source_labels, args, argv)


def share_weights(sources: List[Path], flatbuffers: List[bytes], sidecars: List[Dict], spec,
                  source_labels: List[str], args: argparse.Namespace, argv: Optional[Sequence[str]]) -> int:
    """Make, choose, deliver and measure the version (see the module docstring); returns the exit status.
    ``source_labels``: the first source's outputs, before ``--keywords`` kept some."""
    from pi_runtime.labels import NON_KEYWORD_LABELS, keyword_labels
    from pi_runtime.sidecar import write_sidecar
    from train.kws.data import LABELS, ensure_dataset, load_split
    from train.kws.features import compute_features
    from train.kws.negatives import file_sha256
    from train.kws.results import write_results_markdown
    from train.kws.training import log, measure_file, update_results
    from train.kws.versions import KB, VERSIONS, config_for, limits_for, model_file_stem
    from train.paths import models_dir
    from train.toolbox.export import ZLIB_LEVEL, write_model_file
    from train.toolbox.limits import check_limits
    from train.toolbox.calibration import logit_scale
    from train.toolbox.ensemble import average_outputs
    from train.toolbox.weight_sharing import (distinct_weight_values, per_tensor_weights, scale_output_logits,
                                              share_weight_values)

    started = time.perf_counter()
    say = (lambda message: None) if args.quiet else log
    version = VERSIONS[args.version]
    labels = list(spec.labels)
    sidecar = sidecars[0]  # the frontend, input and labels every member shares
    compress = sources[0].name.endswith(".zlib")
    output_dir = args.output_dir or models_dir() / "kws"
    suffix = ".tflite.zlib" if compress else ".tflite"
    open_set = bool(set(labels) & set(NON_KEYWORD_LABELS))  # kws_live_<version>: keywords, _silence_, _unknown_
    output_path = output_dir / (model_file_stem(args.version, keyword_labels(labels), LABELS, open_set=open_set)
                                + suffix)
    if any(output_path.resolve() == source.resolve() for source in sources):
        print(f"error: {output_path} is a source itself: deliver the version to another folder (--output-dir)",
              file=sys.stderr)
        return 2
    for source, flatbuffer in zip(sources, flatbuffers):
        if not distinct_weight_values(flatbuffer):
            print(f"error: {source} has no int8 weight tensors to share (a full-integer model is needed)",
                  file=sys.stderr)
            return 2
    try:
        data_dir = ensure_dataset(args.data_dir)
        val = load_split("val", data_dir=data_dir, labels=labels, progress=not args.quiet)
        test = None if args.validation_only else load_split("test", data_dir=data_dir, labels=labels,
                                                             progress=not args.quiet)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    val_features = compute_features(val.audio, spec.input)

    limit_bytes = version.max_size_kb * KB
    calibrate = config_for(version, keyword_labels(labels), open_set=open_set).calibrate_temperature
    candidates = []
    per_tensor = [per_tensor_weights(flatbuffer) for flatbuffer in flatbuffers]  # the same for every candidate
    for levels in args.levels:
        members = [share_weight_values(flatbuffer, levels) for flatbuffer in per_tensor]
        shared = members[0] if len(members) == 1 else average_outputs(members)
        logits = _file_logits(shared, sidecar, val_features)
        candidate = {"levels": levels,
                     "val_accuracy": round(float(np.mean(np.argmax(logits, axis=1) == val.label_ids)), 5)}
        if calibrate:  # same answers, probabilities a fixed threshold can read (as the version's recipe does)
            candidate["logit_scale"] = logit_scale(logits, val.label_ids)
            shared = scale_output_logits(shared, candidate["logit_scale"])
        stored = zlib.compress(shared, ZLIB_LEVEL) if compress else shared
        candidate["size_bytes"] = len(stored)
        say(f"{levels:4d} values per tensor: {len(stored)} bytes, validation {100 * candidate['val_accuracy']:.2f} %"
            + ("" if len(stored) < limit_bytes else f" (over the {version.max_size_kb:g} kB limit)"))
        candidates.append((candidate, stored))
    fitting = [(candidate, stored) for candidate, stored in candidates if candidate["size_bytes"] < limit_bytes]
    if not fitting:
        print(f"error: no candidate is under {version.max_size_kb:g} kB (smallest: "
              f"{min(candidate['size_bytes'] for candidate, _ in candidates)} bytes); try fewer --levels",
              file=sys.stderr)
        return 1
    chosen, stored = max(fitting, key=lambda item: (item[0]["val_accuracy"], -item[0]["levels"]))
    print(f"chosen on validation: {chosen['levels']} values per weight tensor ({chosen['size_bytes']} bytes, "
          f"{100 * chosen['val_accuracy']:.2f} %"
          + (f"; logits scaled by {chosen['logit_scale']:.3f}, the validation negative log-likelihood's factor)"
             if calibrate else ")"))

    tflite_path = output_path.with_name(output_path.name[:-len(".zlib")]) if compress else output_path
    _, replaced = write_model_file(tflite_path, stored, compressed=compress)
    if replaced:
        log(f"replaced {output_path} and its sidecar")
    command = "python -m train.kws.share_weights " + " ".join(sys.argv[1:] if argv is None else argv)
    derived_from = [{"model": _shown(source), "sha256": file_sha256(source),
                     "command": member.get("training", {}).get("command")} for source, member in zip(sources, sidecars)]
    training = {
        "command": command, "version": args.version,
        "derived_from": derived_from[0] if len(sources) == 1 else derived_from,
        "weight_sharing": {"per_tensor": True, "levels": chosen["levels"],
                           "candidates": [candidate for candidate, _ in candidates]},
        "config": sidecar.get("training", {}).get("config", {}),
        **({"outputs_kept": labels} if labels != source_labels else {}),
        "val_accuracy": chosen["val_accuracy"],
        **({"logit_scale": chosen["logit_scale"]} if calibrate else {}),
    }
    # A detector calibrated on the source's posteriors is not this file's: `python -m train.kws.calibrate` it.
    write_sidecar(output_path, {**{key: value for key, value in sidecar.items()
                                   if key not in ("training", "results", "detector")},
                                "training": training, "results": {}})
    if "detector" in sidecar:
        print(f"note: the source's detector calibration is left out; calibrate this file with `python -m "
              f"train.kws.calibrate {output_path}`")
    if test is None:
        print(f"wrote {output_path} (validation only: the test split was not read)")
        return 0
    test_features = compute_features(test.audio, spec.input)
    source_results = [member.get("results", {}) for member in sidecars]
    result = measure_file(output_path, labels, test_features, test.label_ids,
                          parameters=sum(int(results.get("parameters", 0)) for results in source_results),
                          latency_runs=args.latency_runs, say=say)
    result.val_accuracy = chosen["val_accuracy"]
    # The networks' training is the sources'; sharing their weights takes seconds.
    result.train_seconds = sum(float(results.get("train_seconds", 0.0)) for results in source_results)
    update_results(result)
    if open_set:  # the held-out generated test clips, as a trained open-set model's sidecar records them
        from train.kws.open_set import record_held_out_test

        record_held_out_test(output_path, data_dir=data_dir, say=say)
    print(f"\nkws version {args.version} from {', '.join(map(str, sources))} -> {output_path}")
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
