# distutils: sources = native/src/fft.c native/src/frontend.c
"""Thin owners of the C frontend state; validation and docs are in native/frontend.py.

Every method here expects arguments the Python layer has already checked
(dtype, contiguity, shapes); it only hands pointers to C with the GIL released.
"""
import numpy as np

from cpython.buffer cimport (PyBUF_FORMAT, PyBUF_STRIDES, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from libc.stdint cimport int16_t, int64_t
from libc.stdlib cimport free, malloc

# The C enums (status.h, frontend.h), exported once here (native.frontend and native.checks read them).
STATUS_OK = TINYML_OK
STATUS_NO_MEMORY = TINYML_ERR_NO_MEMORY
STATUS_NON_FINITE = TINYML_ERR_NON_FINITE
STATUS_TOO_SHORT = TINYML_ERR_TOO_SHORT
STATUS_OUT_OF_RANGE = TINYML_ERR_OUT_OF_RANGE
STATUS_INVALID_ARGUMENT = TINYML_ERR_INVALID_ARGUMENT
STATUS_FLUSHED = TINYML_ERR_FLUSHED
FEATURE_KIND_CODES = {"spectrogram": TINYML_SPECTROGRAM, "log_mel": TINYML_LOG_MEL, "mfcc": TINYML_MFCC,
                      "pcen": TINYML_PCEN}

ctypedef fused sample_t:
    float
    int16_t

# looked up once: StreamCore.push runs per 20 ms hop
cdef object _ndarray = np.ndarray
cdef object _empty = np.empty
cdef object _float32 = np.dtype(np.float32)


cdef class FrontendConfig:
    """The C config of one frontend and its tables, typed (built by native.frontend.frontend_config).

    Keyword arguments: the fields of tinyml_frontend_config (frontend.h) and the
    tables (float32 window[frame_length_samples]; int32 mel_first_bin and
    mel_bin_count[num_mel_bins]; float32 mel_weights[sum of bin counts];
    float32 dct[num_mfccs * num_mel_bins] or empty). Sizes are checked against
    each other here, so no table is read beyond its end.
    """

    def __init__(self, *, int frame_length_samples, int frame_step_samples, int fft_length, int feature_kind,
                 int num_mel_bins, int num_mfccs, float log_offset, float pcen_smoothing, float pcen_alpha,
                 float pcen_delta, float pcen_power, float pcen_epsilon, window, mel_first_bin, mel_bin_count,
                 mel_weights, dct, float noise_smoothing=0.0, float noise_min_remaining=0.0):
        cdef Py_ssize_t m, covered = 0
        if not (2 <= frame_length_samples <= fft_length and frame_step_samples >= 1):
            raise ValueError("need 2 <= frame_length_samples <= fft_length and frame_step_samples >= 1")
        if feature_kind not in FEATURE_KIND_CODES.values():
            raise ValueError(f"unknown feature kind code {feature_kind}")
        self.window, self._window = window, window
        self.mel_first_bin, self._mel_first_bin = mel_first_bin, mel_first_bin
        self.mel_bin_count, self._mel_bin_count = mel_bin_count, mel_bin_count
        self.mel_weights, self._mel_weights = mel_weights, mel_weights
        self.dct, self._dct = dct, dct
        if self._window.shape[0] != frame_length_samples:
            raise ValueError("window must hold frame_length_samples values")
        uses_mel = feature_kind != TINYML_SPECTROGRAM
        if num_mel_bins < 0 or (uses_mel and num_mel_bins < 1) or self._mel_first_bin.shape[0] != (num_mel_bins if uses_mel else 0) \
                or self._mel_bin_count.shape[0] != self._mel_first_bin.shape[0]:
            raise ValueError("mel_first_bin and mel_bin_count must hold num_mel_bins values (none for a spectrogram)")
        for m in range(self._mel_first_bin.shape[0]):
            if (self._mel_first_bin[m] < 0 or self._mel_bin_count[m] < 0
                    or self._mel_first_bin[m] + self._mel_bin_count[m] > fft_length // 2 + 1):
                raise ValueError(f"mel filter {m} lies outside the spectrum")
            covered += self._mel_bin_count[m]
        if self._mel_weights.shape[0] != covered:
            raise ValueError("mel_weights must hold one weight per bin the filters cover")
        if num_mfccs < 0 or self._dct.shape[0] != (num_mfccs * num_mel_bins if feature_kind == TINYML_MFCC else 0) \
                or (feature_kind == TINYML_MFCC and not 1 <= num_mfccs <= num_mel_bins):
            raise ValueError("dct must be num_mfccs x num_mel_bins (MFCC only)")
        self.config.frame_length_samples = frame_length_samples
        self.config.frame_step_samples = frame_step_samples
        self.config.fft_length = fft_length
        self.config.feature_kind = feature_kind
        self.config.num_mel_bins = num_mel_bins if uses_mel else 0
        self.config.num_mfccs = num_mfccs if feature_kind == TINYML_MFCC else 0
        self.config.log_offset = log_offset
        self.config.pcen_smoothing = pcen_smoothing
        self.config.pcen_alpha = pcen_alpha
        self.config.pcen_delta = pcen_delta
        self.config.pcen_power = pcen_power
        self.config.pcen_epsilon = pcen_epsilon
        if not (0.0 <= noise_smoothing <= 1.0 and 0.0 <= noise_min_remaining <= 1.0):
            raise ValueError("noise_smoothing and noise_min_remaining must be in [0, 1]")
        if noise_smoothing > 0.0 and feature_kind != TINYML_PCEN:
            raise ValueError("noise reduction is a stage of PCEN only")
        self.config.noise_smoothing = noise_smoothing
        self.config.noise_min_remaining = noise_min_remaining


cdef class FrontendCore:
    """Native frontend of one FrontendConfig."""
    cdef tinyml_frontend *_frontend
    cdef readonly int num_features
    cdef readonly FrontendConfig config

    def __cinit__(self, FrontendConfig config not None):
        self.config = config
        self._frontend = new_frontend(config)
        if self._frontend is NULL:
            raise MemoryError("could not allocate the native frontend")
        self.num_features = tinyml_frontend_num_features(self._frontend)

    def __dealloc__(self):
        tinyml_frontend_destroy(self._frontend)

    def num_frames(self, int64_t num_samples):
        return tinyml_frontend_num_frames(self._frontend, num_samples)

    def compute(self, const sample_t[:, ::1] clips, int resize_rows, int resize_cols, float[:, :, ::1] out):
        """clips: float32 or int16 [n, samples] -> out float32[n, rows, cols] (the frames, or resized to
        resize_rows x resize_cols when resize_rows > 0); returns a tinyml_status."""
        cdef int status
        cdef int is_int16 = sample_t is int16_t
        if clips.shape[0] == 0:
            return TINYML_OK
        with nogil:
            status = tinyml_frontend_compute_clips(self._frontend, &clips[0, 0], is_int16, clips.shape[0],
                                                   clips.shape[1], resize_rows, resize_cols, &out[0, 0, 0])
        return status


def resize_bilinear(const float[:, ::1] image, float[:, ::1] out):
    """tf.image.resize (bilinear, half-pixel centres) of image into out (both at least 1 x 1); a tinyml_status."""
    cdef int status
    if image.shape[0] < 1 or image.shape[1] < 1 or out.shape[0] < 1 or out.shape[1] < 1:
        raise ValueError("image and out must be at least 1 x 1")
    with nogil:
        status = tinyml_resize_bilinear(&image[0, 0], image.shape[0], image.shape[1], &out[0, 0],
                                        out.shape[0], out.shape[1])
    return status


cdef class StreamCore:
    """Streaming state over a FrontendCore."""
    cdef tinyml_frontend_stream *_stream
    cdef FrontendCore _core  # keeps the frontend alive as long as the stream
    cdef readonly int last_status  # why the last push returned None (see push)

    def __cinit__(self, FrontendCore core):
        self._core = core
        self._stream = tinyml_frontend_stream_create(core._frontend)
        if self._stream is NULL:
            raise MemoryError("could not allocate the streaming frontend")

    def __dealloc__(self):
        tinyml_frontend_stream_destroy(self._stream)

    def reset(self):
        tinyml_frontend_stream_reset(self._stream)

    def frames_after(self, int64_t num_samples):
        return tinyml_frontend_stream_frames_after(self._stream, num_samples)

    def push(self, chunk):
        """Push a C-contiguous 1-D int16 or float32 ndarray in native byte order.

        Returns a new float32[frames, features] array of the frames that became
        complete, or None with nothing consumed: when chunk is not such an array
        (last_status 0: convert it and push again) or when C refused it
        (last_status < 0, a tinyml_status).  The checks read the buffer protocol's
        description of the array, cheaper per call than typed memoryviews.
        """
        cdef Py_buffer audio
        cdef Py_buffer out_view
        cdef int is_int16
        cdef int64_t frames, produced
        self.last_status = TINYML_OK
        if type(chunk) is not _ndarray:
            return None
        try:
            PyObject_GetBuffer(chunk, &audio, PyBUF_FORMAT | PyBUF_STRIDES)
        except (BufferError, ValueError, TypeError):  # e.g. datetime64 arrays
            return None
        try:
            if audio.ndim != 1 or audio.format[0] == 0 or audio.format[1] != 0:
                return None
            if audio.format[0] == b'h' and audio.itemsize == 2:
                is_int16 = 1
            elif audio.format[0] == b'f' and audio.itemsize == 4:
                is_int16 = 0
            else:
                return None
            if audio.shape[0] > 1 and audio.strides[0] != audio.itemsize:
                return None
            frames = tinyml_frontend_stream_frames_after(self._stream, audio.shape[0])
            out = _empty((frames, self._core.num_features), _float32)
            if audio.shape[0] == 0:
                return out
            PyObject_GetBuffer(out, &out_view, PyBUF_WRITABLE)
            with nogil:
                produced = tinyml_frontend_stream_push(self._stream, audio.buf, is_int16, audio.shape[0],
                                                       <float *>out_view.buf)
            PyBuffer_Release(&out_view)
            if produced < 0:
                self.last_status = <int>produced
                return None
            return out
        finally:
            PyBuffer_Release(&audio)


def rfft_lanes(const float[:, ::1] x, int lanes):
    """One-sided FFT of the columns of x (float32[n, lanes], lanes <= TINYML_LANES or any).

    Returns (re, im), each float32[n // 2 + 1, lanes].  For tests of the FFT itself.
    """
    cdef int n = x.shape[0]
    if n < 1 or lanes < 1 or x.shape[1] != lanes:
        raise ValueError("x must be float32[n >= 1, lanes]")
    re = np.empty((n // 2 + 1, lanes), np.float32)
    im = np.empty((n // 2 + 1, lanes), np.float32)
    cdef float[:, ::1] re_view = re
    cdef float[:, ::1] im_view = im
    cdef tinyml_fft_plan *plan = tinyml_fft_plan_create(n)
    if plan is NULL:
        raise MemoryError("could not plan the FFT")
    cdef float *work = <float *>malloc(tinyml_rfft_work_floats(plan, lanes) * sizeof(float) + 1)
    if work is NULL:
        tinyml_fft_plan_destroy(plan)
        raise MemoryError("could not allocate FFT scratch memory")
    with nogil:
        tinyml_rfft(plan, lanes, &x[0, 0], &re_view[0, 0], &im_view[0, 0], work)
    free(work)
    tinyml_fft_plan_destroy(plan)
    return re, im


def fft_plan_shape(int n):
    """(largest butterfly radix, chirp-z length or 0) of the FFT plan for length n. For tests."""
    if n < 1:
        raise ValueError("n must be >= 1")
    cdef tinyml_fft_plan *plan = tinyml_fft_plan_create(n)
    if plan is NULL:
        raise MemoryError("could not plan the FFT")
    shape = (tinyml_fft_largest_radix(plan), tinyml_fft_chirp_z_length(plan))
    tinyml_fft_plan_destroy(plan)
    return shape
