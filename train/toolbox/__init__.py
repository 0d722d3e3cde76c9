"""Optimisation toolbox shared by keyword spotting and forecasting.

* :mod:`train.toolbox.pruning` - magnitude pruning (PolynomialDecay), sparsity measurement
* :mod:`train.toolbox.quantization` - quantisation-aware training
* :mod:`train.toolbox.export` - Keras -> .tflite / .tflite.zlib (float, weights-only, int8) + sidecar
* :mod:`train.toolbox.tflite_slim` - byte breakdown and shrinking of tiny flatbuffers
* :mod:`train.toolbox.limits` - the PASS/FAIL limits table of the version CLIs

Submodules are imported on demand (``from train.toolbox.export import export_model``)
so that ``limits`` works without TensorFlow.
"""
