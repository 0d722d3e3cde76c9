"""C loops (behind native.posteriors) for the per-window post-processing of live keyword spotting: softmax
and posterior smoothing on a handful of labels, where numpy's per-call cost
would be most of the work.

Exactly numpy's arithmetic, so results do not change: the softmax shift and
division are single float32 operations, its sum is ``np.add.reduce``'s order
for up to 128 values (``sum_like_numpy``; numpy sums longer vectors in blocks), the exponential stays ``np.exp``
(called by the Python side); the smoothing keeps a running float64 sum as
``pi_runtime.kws_pipeline.DetectionPolicy`` always did.
"""
from libc.math cimport INFINITY, pow

# np.add.reduce sums float32 in blocks of this many values pairwise; below it,
# as reproduced here. Longer vectors are summed by numpy itself.
MAX_LABELS = 128

ctypedef fused probability_t:
    float
    double


cdef float _sum_like_numpy(const float *a, Py_ssize_t n) noexcept nogil:
    # numpy's pairwise sum: sequential below 8 values, else eight running sums
    # combined as a tree, then the rest (checked against np.add.reduce in the tests)
    cdef float total = -0.0
    cdef float r[8]
    cdef Py_ssize_t i, j
    if n < 8:
        for i in range(n):
            total += a[i]
        return total
    for j in range(8):
        r[j] = a[j]
    i = 8
    while i < n - (n % 8):
        for j in range(8):
            r[j] += a[i + j]
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        total += a[i]
        i += 1
    return total


def sum_like_numpy(const float[::1] x):
    """``float(np.add.reduce(x))`` for float32 x of 1 to MAX_LABELS values, in the same order."""
    if x.shape[0] < 1 or x.shape[0] > MAX_LABELS:
        raise ValueError(f"1 to {MAX_LABELS} values, got {x.shape[0]}")
    return _sum_like_numpy(&x[0], x.shape[0])


def shift_by_max(const float[::1] logits, float[::1] out):
    """out = logits - max(logits), in float32 (the softmax's shift: no overflow, same result)."""
    cdef Py_ssize_t n = logits.shape[0], i
    cdef float top = -INFINITY
    if out.shape[0] != n or n == 0:
        raise ValueError("out must have the length of logits (at least 1)")
    for i in range(n):
        if logits[i] > top or logits[i] != logits[i]:  # NaN wins, as in numpy's max
            top = logits[i]
            if top != top:
                break
    for i in range(n):
        out[i] = logits[i] - top


def normalise(float[::1] exponentials):
    """exponentials /= np.add.reduce(exponentials), in place, float32 (1 to MAX_LABELS values)."""
    cdef Py_ssize_t n = exponentials.shape[0], i
    cdef float total
    if n < 1 or n > MAX_LABELS:
        raise ValueError(f"1 to {MAX_LABELS} values, got {n}")
    total = _sum_like_numpy(&exponentials[0], n)
    for i in range(n):
        exponentials[i] = exponentials[i] / total


cdef class PosteriorSmoother:
    """Mean of the last ``windows`` probability vectors, as a running float64 sum.

    ``history`` (windows x labels), ``total`` and ``mean`` (labels) are float64
    arrays owned by the caller, who reads ``mean`` after each push. With an
    ``exponent`` other than 1 each vector is first raised to it and renormalised
    (an all-zero vector stays zero); with 1 it is added as given.
    """
    cdef double[:, ::1] history
    cdef double[::1] total
    cdef double[::1] mean
    cdef Py_ssize_t count, oldest
    cdef double exponent

    def __init__(self, double[:, ::1] history, double[::1] total, double[::1] mean, double exponent=1.0):
        if history.shape[0] < 1 or history.shape[1] != total.shape[0] or mean.shape[0] != total.shape[0]:
            raise ValueError("history must be (windows, labels); total and mean (labels,)")
        if not exponent > 0 or exponent == INFINITY:
            raise ValueError(f"exponent must be a positive number, got {exponent}")
        self.history, self.total, self.mean = history, total, mean
        self.exponent = exponent
        self.clear()

    def clear(self):
        self.count = 0
        self.oldest = 0
        self.total[:] = 0.0

    cdef Py_ssize_t _next_slot(self) noexcept:
        # the history row the next window goes to; when full, the oldest leaves the sum first
        cdef Py_ssize_t i, slot, windows = self.history.shape[0]
        if self.count == windows:
            slot = self.oldest
            self.oldest = (self.oldest + 1) % windows
            for i in range(self.total.shape[0]):
                self.total[i] -= self.history[slot, i]
        else:
            slot = (self.oldest + self.count) % windows
            self.count += 1
        return slot

    cdef Py_ssize_t _finish(self) noexcept:
        # the mean over the windows held, and the first label with the largest
        cdef Py_ssize_t i, best = 0
        for i in range(self.mean.shape[0]):
            self.mean[i] = self.total[i] / self.count
            if self.mean[i] > self.mean[best]:
                best = i
        return best

    def push(self, const probability_t[::1] probabilities):
        """Add one window (float32 or float64, labels); return the index of the largest mean."""
        cdef Py_ssize_t i, slot
        if probabilities.shape[0] != self.total.shape[0]:
            raise ValueError(f"{probabilities.shape[0]} values for {self.total.shape[0]} labels")
        for i in range(probabilities.shape[0]):  # checked before any state changes: one NaN would stay in the sum
            if not (-INFINITY < probabilities[i] < INFINITY):
                raise ValueError(f"probabilities must be finite, got {probabilities[i]} at label {i}")
        slot = self._next_slot()
        if self.exponent != 1.0:
            self._sharpen_into(probabilities, slot)
        else:
            for i in range(self.total.shape[0]):
                self.history[slot, i] = probabilities[i]
        for i in range(self.total.shape[0]):
            self.total[i] += self.history[slot, i]
        return self._finish()

    cdef void _sharpen_into(self, const probability_t[::1] probabilities, Py_ssize_t slot) noexcept:
        # p ** exponent, renormalised to sum to 1 (a softmax at temperature 1/exponent); divided by the
        # largest first, so the largest becomes 1 and no exponent can round the whole window to zeros
        cdef Py_ssize_t i, n = self.total.shape[0]
        cdef double top = 0.0, powered_sum = 0.0
        for i in range(n):
            if probabilities[i] > top:
                top = probabilities[i]
        if top <= 0.0:  # an all-zero window (gated) stays zeros
            for i in range(n):
                self.history[slot, i] = 0.0
            return
        for i in range(n):  # a value under 0 (rounding in stored posteriors) counts as 0: no pow of a negative
            self.history[slot, i] = pow(<double>probabilities[i] / top, self.exponent) if probabilities[i] > 0 else 0.0
            powered_sum += self.history[slot, i]
        for i in range(n):
            self.history[slot, i] /= powered_sum
