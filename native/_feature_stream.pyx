# distutils: sources = native/src/feature_stream.c native/src/resample.c native/src/fft.c native/src/frontend.c native/src/ring.c
"""Thin owner of the C feature stream; tables, validation and docs live in native.feature_stream."""
from libc.stdint cimport int64_t

from native._frontend cimport (FrontendConfig, tinyml_frontend, new_frontend, TINYML_OK, TINYML_ERR_NON_FINITE,
                               TINYML_ERR_OUT_OF_RANGE, TINYML_ERR_FLUSHED)
from native.checks import raise_for_samples
from native._resample cimport tinyml_polyphase, polyphase_filter


cdef extern from "feature_stream.h" nogil:
    ctypedef struct tinyml_level_meter:
        size_t window_samples
    double tinyml_level_meter_dbfs(const tinyml_level_meter *m, double silence_dbfs)

    ctypedef struct tinyml_feature_stream:
        size_t num_features
        int64_t frames_emitted
        int flushed
        tinyml_level_meter level
    int tinyml_feature_stream_init(tinyml_feature_stream *s, const tinyml_polyphase *filter,
                                   tinyml_frontend *frontend, size_t window_rows, size_t hop_frames,
                                   size_t level_window_samples, int resize_rows, int resize_cols)
    void tinyml_feature_stream_free(tinyml_feature_stream *s)
    void tinyml_feature_stream_reset(tinyml_feature_stream *s)
    double tinyml_energy(const float *x, size_t n)
    int tinyml_feature_stream_push(tinyml_feature_stream *s, const float *x, size_t n, double *energy)
    int tinyml_feature_stream_flush(tinyml_feature_stream *s, int last_window, int64_t *new_frames)
    int64_t tinyml_feature_stream_next_window(tinyml_feature_stream *s, float *out)


def energy(const float[::1] x):
    """Sum of squares of x in double precision (NaN or inf when a value is)."""
    if x.shape[0] == 0:
        return 0.0
    return tinyml_energy(&x[0], x.shape[0])


cdef class FeatureStreamCore:
    """C state: resampler (optional), streaming frontend, ring of the last window_rows frames."""
    cdef tinyml_feature_stream stream
    cdef bint ready
    cdef bint busy
    cdef float[:, ::1] window  # filled by next_window() (bound once: no buffer lookup per hop)
    cdef double silence_dbfs

    def __cinit__(self, FrontendConfig config not None, size_t up, size_t down, size_t half_len,
                  const float[:, ::1] phases, size_t window_rows, size_t hop_frames, float[:, ::1] window_out,
                  size_t level_window_samples, double silence_dbfs, int resize_rows, int resize_cols):
        """window_out: window_rows x num_features, or resize_rows x resize_cols when resize_rows > 0."""
        cdef tinyml_polyphase filter
        cdef tinyml_polyphase *filter_pointer = NULL
        self.ready = False
        self.silence_dbfs = silence_dbfs
        if window_out.shape[0] != <Py_ssize_t>(resize_rows if resize_rows > 0 else window_rows) or \
                (resize_rows > 0 and window_out.shape[1] != resize_cols):
            raise ValueError("window_out must have window_rows rows, or the resize's shape")
        self.window = window_out
        if up != down:
            filter = polyphase_filter(up, down, half_len, phases)
            filter_pointer = &filter
        frontend = new_frontend(config)
        if tinyml_feature_stream_init(&self.stream, filter_pointer, frontend, window_rows, hop_frames,
                                      level_window_samples, resize_rows, resize_cols) != TINYML_OK:
            raise MemoryError("could not allocate the feature stream")
        if resize_rows == 0 and self.window.shape[1] != <Py_ssize_t>self.stream.num_features:
            tinyml_feature_stream_free(&self.stream)
            raise ValueError("window_out must have num_features columns")
        self.ready = True

    def __dealloc__(self):
        if self.ready:
            tinyml_feature_stream_free(&self.stream)

    def push(self, const float[::1] chunk):
        """Consume chunk; return its energy, or raise ValueError (nothing consumed) on NaN/inf or out of range."""
        cdef double chunk_energy = 0.0
        cdef int status = 0
        cdef size_t n = chunk.shape[0]
        if n == 0:
            return 0.0
        self._enter()
        with nogil:
            status = tinyml_feature_stream_push(&self.stream, &chunk[0], n, &chunk_energy)
        self.busy = False
        if status == TINYML_ERR_NON_FINITE or status == TINYML_ERR_OUT_OF_RANGE:
            raise_for_samples(status, "audio")
        if status == TINYML_ERR_FLUSHED:
            raise ValueError("the stream was flushed (end of input): reset() it before pushing more audio")
        if status != TINYML_OK:
            raise MemoryError("out of memory in the feature stream")
        return chunk_energy

    def flush(self, bint last_window):
        """End the input: the resampler's tail through the frontend; returns the frames it completed."""
        cdef int64_t new_frames = 0
        cdef int status = 0
        self._enter()
        with nogil:
            status = tinyml_feature_stream_flush(&self.stream, last_window, &new_frames)
        self.busy = False
        if status != TINYML_OK:
            raise MemoryError("out of memory in the feature stream")
        return new_frames

    def next_window(self):
        """Index of the last frame of the next window (now in window_out), or -1 when none is due."""
        cdef int64_t frame
        self._enter()
        frame = tinyml_feature_stream_next_window(&self.stream, &self.window[0, 0])
        self.busy = False
        if frame == TINYML_ERR_NON_FINITE:
            raise ValueError("the frontend produced a NaN or infinite feature (those frames were dropped; "
                             "the next window comes once window_rows new frames exist)")
        return frame

    def reset(self):
        self._enter()
        tinyml_feature_stream_reset(&self.stream)
        self.busy = False

    def level_dbfs(self):
        """RMS level of the input's last level_window_samples samples (to within one chunk), dBFS."""
        return tinyml_level_meter_dbfs(&self.stream.level, self.silence_dbfs)

    cdef _enter(self):
        if self.busy:
            raise RuntimeError("FeatureStream used from two threads at once: it is not thread-safe")
        self.busy = True

    @property
    def frames_emitted(self):
        return self.stream.frames_emitted

    @property
    def flushed(self):
        return self.stream.flushed != 0

    @property
    def num_features(self):
        return self.stream.num_features
