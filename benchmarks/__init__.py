"""Speed and quality measurements with their peers side by side (run as ``python -m benchmarks.NAME``).

Benchmarks print versions and configuration first, then medians of N runs after
warm-up and ratios to the measured peers.  They never assert.
"""
