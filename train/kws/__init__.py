"""Keyword spotting on Mini Speech Commands: data, features, models, training, versions.

* :mod:`train.kws.data` - download, the course's splits, clips as int16 arrays
* :mod:`train.kws.features` - features of clip sets through the native frontend
* :mod:`train.kws.augment` - time shift, noise, SpecAugment masks
* :mod:`train.kws.models` - DS-CNN (Lab 4), CNN (Lab 3), MLPerf-style DS-CNN, with width multiplier
* :mod:`train.kws.training` - one run: train (pruning, QAT) -> export -> evaluate the file
* :mod:`train.kws.versions` - the delivered versions a, b, c and their limits
* ``python -m train.kws --version a|b|c [--keywords go,stop]`` - the CLI
"""
