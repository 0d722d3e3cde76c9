"""What runs on the Raspberry Pi: model loading, the keyword-spotting and
forecasting pipelines, the latency tool and live listening.

Depends on numpy, the ``native`` extensions and a TFLite interpreter only.
"""
