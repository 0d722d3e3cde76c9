"""Sound-making building blocks for negatives and augmentation: noise, hum, mixing, levels, babble, rooms.

Pure numpy. Audio is float32 in [-1, 1] (full scale 1.0) at 16 kHz unless a
function says otherwise; every random choice comes from the ``rng``
(``numpy.random.Generator``) passed in, so the same seed gives the same bytes.

Levels are in dBFS relative to a full-scale value of 1.0: ``rms_dbfs`` of a
full-scale square wave is 0 dB, of a full-scale sine -3.01 dB.

Room impulse responses come from a generator of our own (see
:func:`room_impulse_response`) rather than an image-method simulator such as
pyroomacoustics: it needs no extra dependency, and the generated data (and the
caches built from it) are the same on every machine.
"""
from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE_HZ = 16000
NOISE_KINDS = ("white", "pink", "brown")
# Spectral power slope of each noise colour: power ~ 1 / f**exponent.
_NOISE_POWER_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}
_ACTIVE_FRAME_MS = 10.0
_DECAY_DB = 60.0  # RT60: the time the energy of a reverberant tail takes to fall by 60 dB


def _as_float_audio(audio, name: str = "audio") -> np.ndarray:
    """``audio`` as a 1-D float32 array (int16 scaled by 1/32768); NaN/Inf refused."""
    array = np.asarray(audio)
    if array.dtype == np.int16:
        array = array.astype(np.float32) / np.float32(32768.0)
    else:
        array = array.astype(np.float32, copy=False)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or Inf")
    return array


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def _unit_rms(audio: np.ndarray) -> np.ndarray:
    rms = _rms(audio)
    return (audio / rms).astype(np.float32) if rms > 0 else audio.astype(np.float32)


def rms_dbfs(audio) -> float:
    """RMS level of ``audio`` in dB relative to full scale (1.0, or 32768 for int16).

    Parameters
    ----------
    audio : float32[samples] in [-1, 1] or int16[samples]

    Returns
    -------
    float
        ``20 * log10(rms)``; ``-inf`` for silence or an empty array.
    """
    rms = _rms(_as_float_audio(audio))
    return 20.0 * math.log10(rms) if rms > 0 else float("-inf")


def peak_dbfs(audio) -> float:
    """Peak level of ``audio`` in dBFS (``-inf`` for silence)."""
    samples = _as_float_audio(audio)
    peak = float(np.max(np.abs(samples), initial=0.0))
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def active_rms_dbfs(audio, *, sample_rate_hz: int = SAMPLE_RATE_HZ, floor_db: float = 40.0) -> float:
    """RMS level in dBFS over the active part of ``audio`` only.

    The audio is cut into 10 ms frames; the active part is the frames whose
    RMS lies within ``floor_db`` of the loudest frame. For a word padded with
    silence this is the word's own level, whatever the padding.

    Returns
    -------
    float
        ``-inf`` for silence.
    """
    samples = _as_float_audio(audio)
    frame = max(1, int(round(sample_rate_hz * _ACTIVE_FRAME_MS / 1000.0)))
    num_frames = len(samples) // frame
    if num_frames == 0:
        return rms_dbfs(samples)
    frames = samples[:num_frames * frame].reshape(num_frames, frame).astype(np.float64)
    frame_power = np.mean(frames ** 2, axis=1)
    if frame_power.max() <= 0:
        return float("-inf")
    active = frame_power >= frame_power.max() * 10.0 ** (-floor_db / 10.0)
    return 10.0 * math.log10(float(frame_power[active].mean()))


def coloured_noise(kind: str, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a white, pink (1/f power) or brown (1/f**2 power) spectrum.

    White noise is shaped in the frequency domain (amplitude ~ f**(-exponent/2),
    no DC), then scaled to unit RMS.

    Parameters
    ----------
    kind : "white", "pink" or "brown"
    num_samples : int, >= 0
    rng : numpy.random.Generator

    Returns
    -------
    float32[num_samples], unit RMS (peaks of a few units: scale before use)
    """
    if kind not in _NOISE_POWER_EXPONENT:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    num_samples = _non_negative_int(num_samples, "num_samples")
    white = rng.standard_normal(num_samples)
    exponent = _NOISE_POWER_EXPONENT[kind]
    if exponent == 0.0 or num_samples < 2:
        return _unit_rms(white.astype(np.float32))
    spectrum = np.fft.rfft(white)
    bins = np.arange(spectrum.size, dtype=np.float64)
    bins[0] = 1.0
    spectrum *= bins ** (-exponent / 2.0)
    spectrum[0] = 0.0  # no DC: brown noise would otherwise wander off zero
    return _unit_rms(np.fft.irfft(spectrum, n=num_samples).astype(np.float32))


def hum(num_samples: int, *, sample_rate_hz: int = SAMPLE_RATE_HZ, mains_hz: int = 50,
        rng: np.random.Generator, harmonics: int = 8) -> np.ndarray:
    """Mains hum: the mains frequency and its harmonics, random amplitudes and phases.

    Harmonic ``h`` gets an amplitude drawn from ``U(0.2, 1) / h`` (odd
    harmonics, as from a transformer, get twice that), a random phase, and a
    frequency off by up to 0.5 % (mains drift). Harmonics at or above Nyquist
    are left out.

    Parameters
    ----------
    num_samples : int, >= 0
    sample_rate_hz : int
    mains_hz : 50 or 60
    rng : numpy.random.Generator
    harmonics : int, how many harmonics (including the fundamental)

    Returns
    -------
    float32[num_samples], unit RMS
    """
    if mains_hz not in (50, 60):
        raise ValueError(f"mains_hz must be 50 or 60, got {mains_hz!r}")
    num_samples = _non_negative_int(num_samples, "num_samples")
    sample_rate_hz = _positive_int(sample_rate_hz, "sample_rate_hz")
    drift = 1.0 + rng.uniform(-0.005, 0.005)
    time_s = np.arange(num_samples, dtype=np.float64) / sample_rate_hz
    out = np.zeros(num_samples, dtype=np.float64)
    for harmonic in range(1, _positive_int(harmonics, "harmonics") + 1):
        frequency_hz = harmonic * mains_hz * drift
        amplitude = rng.uniform(0.2, 1.0) / harmonic * (2.0 if harmonic % 2 else 1.0)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        if frequency_hz < sample_rate_hz / 2:
            out += amplitude * np.sin(2.0 * np.pi * frequency_hz * time_s + phase)
    return _unit_rms(out.astype(np.float32))


def mix_at_snr(signal, noise, snr_db: float, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """``signal`` plus ``noise`` scaled to the signal-to-noise ratio ``snr_db``.

    The signal's level is measured over its active part
    (:func:`active_rms_dbfs`, frames within 40 dB of the loudest), so a short
    word in a padded clip gets the stated SNR over the word itself; the noise's
    level is its RMS over the whole clip.

    Parameters
    ----------
    signal, noise : float32[samples] (or int16), the same length
    snr_db : float

    Returns
    -------
    float32[samples]; not clipped (scale it before writing it as int16)

    Raises
    ------
    ValueError
        For different lengths, a silent signal or a silent noise.
    """
    signal = _as_float_audio(signal, "signal")
    noise = _as_float_audio(noise, "noise")
    if signal.shape != noise.shape:
        raise ValueError(f"signal ({signal.size} samples) and noise ({noise.size} samples) differ in length")
    signal_db = active_rms_dbfs(signal, sample_rate_hz=sample_rate_hz)
    noise_db = rms_dbfs(noise)
    if not math.isfinite(signal_db):
        raise ValueError("the signal is silent: no signal-to-noise ratio can be set")
    if not math.isfinite(noise_db):
        raise ValueError("the noise is silent: no signal-to-noise ratio can be set")
    gain = 10.0 ** ((signal_db - float(snr_db) - noise_db) / 20.0)
    return (signal + np.float32(gain) * noise).astype(np.float32)


def scale_to_peak_dbfs(audio, peak_dbfs: float) -> np.ndarray:
    """``audio`` scaled so that its largest absolute sample is ``peak_dbfs`` (<= 0).

    Silence stays silence.

    Returns
    -------
    float32[samples]
    """
    samples = _as_float_audio(audio)
    if not peak_dbfs <= 0.0:
        raise ValueError(f"peak_dbfs must be <= 0 (full scale), got {peak_dbfs!r}")
    peak = float(np.max(np.abs(samples), initial=0.0))
    if peak == 0.0:
        return samples.copy()
    return (samples * np.float32(10.0 ** (peak_dbfs / 20.0) / peak)).astype(np.float32)


def shift_with_zeros(audio: np.ndarray, shift_samples: int) -> np.ndarray:
    """``audio`` moved later by ``shift_samples`` (earlier if negative), zero-filled, same length."""
    out = np.zeros_like(audio)
    n = len(audio)
    if abs(shift_samples) >= n:
        return out
    if shift_samples >= 0:
        out[shift_samples:] = audio[:n - shift_samples]
    else:
        out[:shift_samples] = audio[-shift_samples:]
    return out


def babble_talkers(clips, *, talkers: int, rng: np.random.Generator, max_shift_fraction: float = 0.25,
                   level_spread_db: float = 6.0) -> tuple:
    """The talkers of :func:`babble` apart: ``(rows, parts)``, the clips chosen (indices into ``clips``) and
    each one's contribution (float64[talkers, samples]: at unit active RMS, its random gain in
    ``[-level_spread_db, 0]`` dB and its random shift of up to ``max_shift_fraction`` of the clip either
    way, zero-filled; a clip without an active part contributes zeros). The same ``rng`` draws give the
    same talkers as :func:`babble`, whose sum they make before its scaling."""
    clips = np.asarray(clips)
    if clips.ndim != 2:
        raise ValueError(f"clips must be 2-D [n, samples], got shape {clips.shape}")
    talkers = _positive_int(talkers, "talkers")
    if talkers > len(clips):
        raise ValueError(f"babble of {talkers} talkers needs at least as many clips, got {len(clips)}")
    num_samples = clips.shape[1]
    max_shift = int(max_shift_fraction * num_samples)
    rows = rng.choice(len(clips), size=talkers, replace=False)
    gains_db = rng.uniform(-level_spread_db, 0.0, size=talkers)
    shifts = rng.integers(-max_shift, max_shift + 1, size=talkers)
    parts = np.zeros((talkers, num_samples), dtype=np.float64)
    for part, row, gain_db, shift in zip(parts, rows, gains_db, shifts):
        clip = _as_float_audio(clips[row], "clip")
        level_db = active_rms_dbfs(clip)
        if math.isfinite(level_db):
            part += shift_with_zeros(clip * 10.0 ** ((gain_db - level_db) / 20.0), int(shift))
    return rows, parts


def babble(clips, *, talkers: int, rng: np.random.Generator, max_shift_fraction: float = 0.25,
           level_spread_db: float = 6.0) -> np.ndarray:
    """Several talkers at once: ``talkers`` different clips, each shifted, summed.

    Each chosen clip is brought to unit active RMS, given a random gain in
    ``[-level_spread_db, 0]`` dB and a random shift of up to
    ``max_shift_fraction`` of the clip either way (zero-filled); the sum is
    scaled to the peak of the loudest chosen clip, so babble is as loud as the
    speech it is made of (:func:`babble_talkers` gives the talkers apart).

    Parameters
    ----------
    clips : float32[n, samples] (or int16), n >= talkers
    talkers : int, >= 1
    rng : numpy.random.Generator

    Returns
    -------
    float32[samples]
    """
    rows, parts = babble_talkers(clips, talkers=talkers, rng=rng, max_shift_fraction=max_shift_fraction,
                                 level_spread_db=level_spread_db)
    return babble_mix(clips, rows, parts)


def babble_mix(clips, rows, parts) -> np.ndarray:
    """float32[samples]: the talkers of :func:`babble_talkers` summed and scaled to the peak of the loudest
    of the clips they came from (``rows`` of ``clips``)."""
    clips, parts = np.asarray(clips), np.asarray(parts)
    if parts.ndim != 2 or len(parts) != len(rows) or not len(rows):
        raise ValueError(f"babble_mix needs one part per row, at least one: {len(rows)} rows, parts {parts.shape}")
    if clips.ndim != 2 or parts.shape[1] != clips.shape[1]:
        raise ValueError(f"parts of {parts.shape[1]} samples for clips of shape {clips.shape}")
    loudest_peak = max(float(np.max(np.abs(_as_float_audio(clips[row], "clip")), initial=0.0)) for row in rows)
    total = np.sum(parts, axis=0, dtype=np.float64)
    total_peak = float(np.max(np.abs(total), initial=0.0))
    if total_peak > 0:
        total *= loudest_peak / total_peak
    return total.astype(np.float32)


def leader_over_rest_db(parts: np.ndarray) -> float:
    """How far the loudest of several talkers (``parts``, float[talkers, samples], as
    :func:`babble_talkers` gives them) stands over the others together, in dB of energy: 0 dB when it
    has as much as all the rest, ``inf`` when it alone has sound, NaN when none has."""
    energy = np.sum(np.asarray(parts, dtype=np.float64) ** 2, axis=-1).reshape(-1)
    if energy.size == 0 or not energy.max() > 0:
        return math.nan
    rest = float(energy.sum() - energy.max())
    return math.inf if rest <= 0 else 10.0 * math.log10(float(energy.max()) / rest)


def room_impulse_response(*, rt60_s: float, sample_rate_hz: int = SAMPLE_RATE_HZ,
                          rng: np.random.Generator, direct_to_reverberant_db: float = 3.0,
                          early_reflections: int = 4, tail_lowpass: float = 0.3) -> np.ndarray:
    """A synthetic room impulse response whose reverberation time is ``rt60_s``.

    Made of three parts, as a measured response looks:

    * the direct path: one unit impulse at sample 0 (so reverberated speech is
      not delayed);
    * ``early_reflections`` single reflections, 1 to 20 ms after it (capped at
      a third of ``rt60_s``), random sign, amplitude 0.2 to 0.7 of the direct
      path times the tail's decay at that time;
    * a diffuse tail from 1 ms on: Gaussian noise, smoothed by a one-pole
      low-pass (``tail_lowpass`` in [0, 1): walls absorb high frequencies) and
      multiplied by ``exp(-3 ln(10) t / rt60_s)``, so its energy falls by
      60 dB in ``rt60_s`` (the slope that Schroeder integration measures, see
      :func:`measure_rt60_s`). It is scaled so that the energy of the direct
      path over the rest is ``direct_to_reverberant_db``.

    The response lasts ``1.4 * rt60_s`` (the tail ends 84 dB down) and is
    scaled to unit energy, so :func:`reverberate` keeps speech at roughly its
    level.

    Parameters
    ----------
    rt60_s : float in [0.05, 3]
    sample_rate_hz : int
    rng : numpy.random.Generator
    direct_to_reverberant_db : float
        About 0 to 10 dB for a talker one or two metres away in a room.
    early_reflections : int, >= 0
    tail_lowpass : float in [0, 1)

    Returns
    -------
    float32[round(1.4 * rt60_s * sample_rate_hz)]
    """
    if not 0.05 <= rt60_s <= 3.0:
        raise ValueError(f"rt60_s must lie in [0.05, 3] seconds, got {rt60_s!r}")
    if not 0.0 <= tail_lowpass < 1.0:
        raise ValueError(f"tail_lowpass must lie in [0, 1), got {tail_lowpass!r}")
    sample_rate_hz = _positive_int(sample_rate_hz, "sample_rate_hz")
    early_reflections = _non_negative_int(early_reflections, "early_reflections")
    length = int(round(1.4 * rt60_s * sample_rate_hz))
    time_s = np.arange(length, dtype=np.float64) / sample_rate_hz
    decay_per_s = _DECAY_DB / 20.0 * math.log(10.0) / rt60_s  # amplitude envelope exp(-decay * t)
    envelope = np.exp(-decay_per_s * time_s)

    noise = rng.standard_normal(length)
    if tail_lowpass > 0.0:
        # The one-pole low-pass (1 - a) / (1 - a z^-1), applied in the frequency domain: circular
        # filtering of stationary noise is still stationary noise of that spectrum.
        z = np.exp(-2j * np.pi * np.arange(length // 2 + 1) / length)
        noise = np.fft.irfft(np.fft.rfft(noise) * (1.0 - tail_lowpass) / (1.0 - tail_lowpass * z), n=length)
    tail = noise * envelope
    tail[:max(1, int(round(0.001 * sample_rate_hz)))] = 0.0

    response = np.zeros(length, dtype=np.float64)
    if early_reflections:
        latest_s = min(0.020, rt60_s / 3.0)
        delays = rng.integers(max(1, int(0.001 * sample_rate_hz)), max(2, int(latest_s * sample_rate_hz)),
                              size=early_reflections)
        signs = rng.choice([-1.0, 1.0], size=early_reflections)
        amplitudes = rng.uniform(0.2, 0.7, size=early_reflections)
        np.add.at(response, delays, signs * amplitudes * envelope[delays])
    response += tail
    wanted_energy = 10.0 ** (-direct_to_reverberant_db / 10.0)  # the direct path has energy 1
    response *= math.sqrt(wanted_energy / float(np.sum(response ** 2)))
    response[0] = 1.0
    return (response / math.sqrt(float(np.sum(response ** 2)))).astype(np.float32)


def measure_rt60_s(impulse_response, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                   fit_range_db: tuple = (-5.0, -35.0)) -> float:
    """Reverberation time of an impulse response by Schroeder backward integration (T30).

    The energy decay curve ``EDC(t) = sum_{s >= t} h(s)**2`` (in dB, 0 at
    t = 0) is fitted by a straight line between ``fit_range_db`` and the time
    to fall by 60 dB is read off the slope.
    """
    response = _as_float_audio(impulse_response, "impulse_response").astype(np.float64)
    energy = np.cumsum(response[::-1] ** 2)[::-1]
    if energy[0] <= 0:
        raise ValueError("the impulse response is silent")
    decay_db = 10.0 * np.log10(np.maximum(energy / energy[0], 1e-300))
    upper_db, lower_db = fit_range_db
    in_range = (decay_db <= upper_db) & (decay_db >= lower_db)
    if in_range.sum() < 2:
        raise ValueError(f"the energy decay does not span {upper_db} to {lower_db} dB")
    time_s = np.flatnonzero(in_range) / sample_rate_hz
    slope_db_per_s = np.polyfit(time_s, decay_db[in_range], 1)[0]
    return float(-_DECAY_DB / slope_db_per_s)


def reverberate(audio, impulse_response) -> np.ndarray:
    """``audio`` convolved with ``impulse_response``, cut to the length of ``audio``.

    Like a one-second recording in the room: the tail that rings on after the
    clip ends is cut off; nothing is delayed when the response's direct path
    is at sample 0 (as :func:`room_impulse_response` makes it).

    Parameters
    ----------
    audio : float32[samples] (or int16)
    impulse_response : float32[taps]

    Returns
    -------
    float32[samples]
    """
    samples = _as_float_audio(audio)
    response = _as_float_audio(impulse_response, "impulse_response")
    if response.size == 0:
        raise ValueError("impulse_response is empty")
    if samples.size == 0:
        return samples.copy()
    size = samples.size + response.size - 1
    fft_size = 1 << (size - 1).bit_length()
    spectrum = np.fft.rfft(samples.astype(np.float64), fft_size) * np.fft.rfft(response.astype(np.float64), fft_size)
    return np.fft.irfft(spectrum, fft_size)[:samples.size].astype(np.float32)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _non_negative_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
