"""Temperature/humidity forecasting on the Jena Climate record.

* :mod:`train.forecast.data` - reading/downloading the CSV, time step, split, normalisation
* :mod:`train.forecast.windows` - clean windows (gaps and clock jumps dropped and counted)
* :mod:`train.forecast.models` - MLP / 1-D CNN / LSTM (and linear) with width multipliers
* :mod:`train.forecast.metrics` - exact multi-step, per-feature MAE in physical units
* :mod:`train.forecast.pipeline` - train, export, evaluate through pi_runtime
* :mod:`train.forecast.versions` - versions a and b and their limits
* ``python -m train.forecast --version a|b`` - the delivered models
"""
