"""Optimisation toolbox shared by keyword spotting and forecasting.

* :mod:`train.toolbox.pruning` - magnitude pruning (PolynomialDecay), sparsity measurement
* :mod:`train.toolbox.quantization` - quantisation-aware training
* :mod:`train.toolbox.export` - Keras -> .tflite / .tflite.zlib (float, weights-only, int8) + sidecar
* :mod:`train.toolbox.tflite_slim` - byte breakdown and shrinking of tiny flatbuffers
* :mod:`train.toolbox.weight_sharing` - on an exported int8 file: one scale per weight tensor, a few shared
  values per tensor, logits scaled or cut to some outputs
* :mod:`train.toolbox.ensemble` - several classifier files as one answering the mean of their outputs
* :mod:`train.toolbox.distillation`, :mod:`train.toolbox.calibration`, :mod:`train.toolbox.weight_averaging` -
  soft targets from exported teachers, one logit scale fitted on validation, an average of the weights
* :mod:`train.toolbox.limits` - the PASS/FAIL limits table of the version CLIs

Submodules are imported on demand (``from train.toolbox.export import export_model``)
so that ``limits`` works without TensorFlow.
"""
