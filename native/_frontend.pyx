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

# looked up once: StreamCore.push runs per 20 ms hop
cdef object _ndarray = np.ndarray
cdef object _empty = np.empty
cdef object _float32 = np.dtype(np.float32)


cdef class FrontendCore:
    """Native frontend for one FrontendParams (built by native.frontend)."""
    cdef tmf_frontend *_frontend
    cdef readonly int num_features

    def __cinit__(self, int frame_length_samples, int frame_step_samples, int fft_length,
                  int feature_kind, int num_mel_bins, int num_mfccs, float log_offset,
                  const float[::1] pcen, const float[::1] window,
                  const int[::1] mel_first_bin, const int[::1] mel_bin_count,
                  const float[::1] mel_weights, const float[::1] dct, int resize_rows, int resize_cols):
        self._frontend = new_frontend(frame_length_samples, frame_step_samples, fft_length, feature_kind,
                                      num_mel_bins, num_mfccs, log_offset, pcen, window, mel_first_bin,
                                      mel_bin_count, mel_weights, dct, resize_rows, resize_cols)
        if self._frontend is NULL:
            raise MemoryError("could not allocate the native frontend")
        self.num_features = tmf_frontend_num_features(self._frontend)

    def __dealloc__(self):
        tmf_frontend_destroy(self._frontend)

    def num_frames(self, int64_t num_samples):
        return tmf_frontend_num_frames(self._frontend, num_samples)

    def compute_clip_float32(self, const float[::1] audio, float[:, ::1] out):
        """audio: float32[samples] -> out float32[rows, cols]; returns a tmf_status."""
        cdef int status
        with nogil:
            status = tmf_frontend_compute_clips(self._frontend, &audio[0], 0, 1, audio.shape[0], &out[0, 0])
        return status

    def compute_clip_int16(self, const int16_t[::1] audio, float[:, ::1] out):
        """audio: int16[samples] -> out float32[rows, cols]; returns a tmf_status."""
        cdef int status
        with nogil:
            status = tmf_frontend_compute_clips(self._frontend, &audio[0], 1, 1, audio.shape[0], &out[0, 0])
        return status

    def compute_float32(self, const float[:, ::1] clips, float[:, :, ::1] out):
        """clips: float32[n, samples] -> out float32[n, rows, cols]; returns a tmf_status."""
        cdef int status
        if clips.shape[0] == 0:
            return TMF_OK
        with nogil:
            status = tmf_frontend_compute_clips(self._frontend, &clips[0, 0], 0,
                                                clips.shape[0], clips.shape[1], &out[0, 0, 0])
        return status

    def compute_int16(self, const int16_t[:, ::1] clips, float[:, :, ::1] out):
        """clips: int16[n, samples] -> out float32[n, rows, cols]; returns a tmf_status."""
        cdef int status
        if clips.shape[0] == 0:
            return TMF_OK
        with nogil:
            status = tmf_frontend_compute_clips(self._frontend, &clips[0, 0], 1,
                                                clips.shape[0], clips.shape[1], &out[0, 0, 0])
        return status


cdef class StreamCore:
    """Streaming state over a FrontendCore (no resize)."""
    cdef tmf_stream *_stream
    cdef FrontendCore _core  # keeps the frontend alive as long as the stream
    cdef readonly int last_status  # why the last push returned None (see push)

    def __cinit__(self, FrontendCore core):
        self._core = core
        self._stream = tmf_stream_create(core._frontend)
        if self._stream is NULL:
            raise MemoryError("could not allocate the streaming frontend")

    def __dealloc__(self):
        tmf_stream_destroy(self._stream)

    def reset(self):
        tmf_stream_reset(self._stream)

    def frames_after(self, int64_t num_samples):
        return tmf_stream_frames_after(self._stream, num_samples)

    def push(self, chunk):
        """Push a C-contiguous 1-D int16 or float32 ndarray in native byte order.

        Returns a new float32[frames, features] array of the frames that became
        complete, or None with nothing consumed: when chunk is not such an array
        (last_status 0: convert it and push again) or when C refused it
        (last_status < 0, a tmf_status).  The checks read the buffer protocol's
        description of the array, cheaper per call than typed memoryviews.
        """
        cdef Py_buffer audio
        cdef Py_buffer out_view
        cdef int is_int16
        cdef int64_t frames, produced
        self.last_status = TMF_OK
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
            frames = tmf_stream_frames_after(self._stream, audio.shape[0])
            out = _empty((frames, self._core.num_features), _float32)
            if audio.shape[0] == 0:
                return out
            PyObject_GetBuffer(out, &out_view, PyBUF_WRITABLE)
            with nogil:
                produced = tmf_stream_push(self._stream, audio.buf, is_int16, audio.shape[0],
                                           <float *>out_view.buf)
            PyBuffer_Release(&out_view)
            if produced < 0:
                self.last_status = <int>produced
                return None
            return out
        finally:
            PyBuffer_Release(&audio)


def rfft_lanes(const float[:, ::1] x, int lanes):
    """One-sided FFT of the columns of x (float32[n, lanes], lanes <= TMF_LANES or any).

    Returns (re, im), each float32[n // 2 + 1, lanes].  For tests of the FFT itself.
    """
    cdef int n = x.shape[0]
    if n < 1 or lanes < 1 or x.shape[1] != lanes:
        raise ValueError("x must be float32[n >= 1, lanes]")
    re = np.empty((n // 2 + 1, lanes), np.float32)
    im = np.empty((n // 2 + 1, lanes), np.float32)
    cdef float[:, ::1] re_view = re
    cdef float[:, ::1] im_view = im
    cdef tmf_fft_plan *plan = tmf_fft_plan_create(n)
    if plan is NULL:
        raise MemoryError("could not plan the FFT")
    cdef float *work = <float *>malloc(tmf_rfft_work_floats(plan, lanes) * sizeof(float) + 1)
    if work is NULL:
        tmf_fft_plan_destroy(plan)
        raise MemoryError("could not allocate FFT scratch memory")
    with nogil:
        tmf_rfft(plan, lanes, &x[0, 0], &re_view[0, 0], &im_view[0, 0], work)
    free(work)
    tmf_fft_plan_destroy(plan)
    return re, im


def fft_plan_shape(int n):
    """(largest butterfly radix, chirp-z length or 0) of the FFT plan for length n. For tests."""
    if n < 1:
        raise ValueError("n must be >= 1")
    cdef tmf_fft_plan *plan = tmf_fft_plan_create(n)
    if plan is NULL:
        raise MemoryError("could not plan the FFT")
    shape = (tmf_fft_largest_radix(plan), tmf_fft_chirp_z_length(plan))
    tmf_fft_plan_destroy(plan)
    return shape
