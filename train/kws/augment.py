"""Augmentation for keyword spotting: audio as a microphone in a room hears it, and SpecAugment masks.

Mini Speech Commands has 800 training clips per word, so a DS-CNN overfits
within a few dozen epochs. Each epoch sees freshly augmented copies: the audio
is changed (then featurised by the native frontend, which takes well under a
second for the whole split), and the features get SpecAugment-style time and
frequency masks.

The audio parts, in the order a sound meets them (each off unless its
probability is above zero; the defaults are the delivered models' recipe,
time shift and white noise):

1. speed perturbation: the clip resampled by a factor in ``[min_speed,
   max_speed]`` with the native polyphase resampler (tempo and pitch change
   together, as Kaldi's speed perturbation); factors are multiples of 1/40;
2. time shift;
3. room reverberation: a synthetic impulse response of random RT60
   (``train.kws.acoustics.room_impulse_response``, a bank of
   ``reverb_bank_size`` rooms drawn per call), FFT-convolved in batches;
4. microphone: band-limiting (high-pass and low-pass, Butterworth magnitude)
   and a spectral tilt in dB per octave, a zero-phase filter applied in the
   frequency domain;
5. babble (other clips of the same batch, never the clip itself) or coloured
   noise (white, pink or brown) at an SNR in ``[min_snr_db, max_snr_db]``,
   measured over the word's active part as ``acoustics.mix_at_snr`` does;
6. gain: relative (``min_gain_db``..``max_gain_db``), or with
   ``gain_to_peak_dbfs`` to a peak level drawn in that range (e.g. -45..0 dBFS);
7. white noise of an absolute level (the electronic noise floor).

Parts 3-5 keep each clip's peak (they change its sound, not its level; level
is part 6's business). Everything ends as int16, rounded as a device would.

Vocal tract length perturbation (VTLP) warps the frequency axis of the mel
spectrum by a factor in ``[min_vtlp_warp, max_vtlp_warp]`` without changing
the tempo. The native frontend's mel filters cannot be warped per clip, so it
is done on the features instead (:func:`warp_mel_axis`): the log-mel energies
are read off at the warped centre frequency of every mel filter by linear
interpolation between neighbouring filters (an approximation of warped
filters, exact only where the log-mel spectrum is linear between two
centres); MFCCs are recomputed from the warped log-mel with the frontend's DCT.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Optional, Tuple

import numpy as np

# Speed factors are k / SPEED_STEPS: small integers for the resampler's filter (at most 20 * 44 + 1 taps).
SPEED_STEPS = 40
_CHUNK_CLIPS = 256  # bounds the memory of the batched FFT parts
_FILTER_TAIL_SAMPLES = 4096
_ACTIVE_FRAME_MS = 10.0  # as train.kws.acoustics.active_rms_dbfs
_ACTIVE_FLOOR_DB = 40.0
NOISE_COLOURS = ("white", "pink", "brown")
_NOISE_POWER_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}


@dataclass(frozen=True)
class AugmentConfig:
    """How much to augment; zeros switch a part off.

    Parameters
    ----------
    time_shift_ms : float
        Clips move by up to this much earlier or later (zero-filled).
    noise_probability : float
        Fraction of clips that get white noise.
    noise_max_amplitude : float
        Standard deviation of the noise, up to this fraction of full scale.
    gain_probability : float
        Fraction of clips scaled by a random gain between ``min_gain_db`` and
        ``max_gain_db`` (before the noise): teaches the model that a very quiet
        word is the same word (a few test clips peak below -50 dBFS).
    gain_to_peak_dbfs : bool
        Draw the clip's peak level in dBFS in ``[min_gain_db, max_gain_db]``
        instead of a gain relative to its own level.
    time_masks, time_mask_max_frames : int
        SpecAugment masks along time: how many, and up to how wide.
    feature_masks, feature_mask_max_bins : int
        Masks along the feature axis (meaningful for log-mel, not MFCC).
    speed_probability, min_speed, max_speed : float
        Fraction of clips played faster or slower by a factor in that range (> 1: faster).
    reverb_probability, min_rt60_s, max_rt60_s : float
        Fraction of clips heard in a simulated room with an RT60 in that range.
    reverb_bank_size : int
        Rooms drawn per call (each reverberated clip takes one of them).
    microphone_probability : float
        Fraction of clips band-limited and tilted like a cheap microphone:
    min_highpass_hz, max_highpass_hz, min_lowpass_hz, max_lowpass_hz : float
        ranges of the corner frequencies (2nd-order Butterworth magnitudes),
    max_tilt_db_per_octave : float
        and a tilt drawn in plus or minus this (around 1 kHz).
    babble_probability, coloured_noise_probability : float
        Fractions of clips mixed with babble of ``babble_talkers`` other clips of the
        batch, or with white, pink or brown noise; a clip gets at most one of the two.
    babble_of_other_words : bool
        Draw the babble's talkers only from the rows the caller names as other speech
        (``babble_rows`` of :func:`augment_audio`: the open-set training's synthetic non-keyword
        words), so that a keyword is heard over people saying other things, as a room's talk is,
        and a negative is not taught to reject keywords in its background; off, from any clip.
    min_snr_db, max_snr_db : float
        Range of their signal-to-noise ratio.
    noise_in_room : bool
        Add the babble or noise before the room, so that a clip drawn for both hears the other
        talkers ring in the same room as the word (and through the same microphone); off, the room
        reverberates the word alone and the noise is added dry, after the microphone.
    vtlp_probability, min_vtlp_warp, max_vtlp_warp : float
        Fraction of clips whose mel frequency axis is warped by a factor in that range
        (see :func:`warp_mel_axis`; log-mel and MFCC features only).
    """

    time_shift_ms: float = 100.0
    noise_probability: float = 0.8
    noise_max_amplitude: float = 0.005
    gain_probability: float = 0.0
    min_gain_db: float = -40.0
    max_gain_db: float = 0.0
    time_masks: int = 1
    time_mask_max_frames: int = 5
    feature_masks: int = 0
    feature_mask_max_bins: int = 4
    gain_to_peak_dbfs: bool = False
    speed_probability: float = 0.0
    min_speed: float = 0.9
    max_speed: float = 1.1
    reverb_probability: float = 0.0
    min_rt60_s: float = 0.2
    max_rt60_s: float = 1.0
    reverb_bank_size: int = 32
    microphone_probability: float = 0.0
    min_highpass_hz: float = 50.0
    max_highpass_hz: float = 400.0
    min_lowpass_hz: float = 3000.0
    max_lowpass_hz: float = 7600.0
    max_tilt_db_per_octave: float = 3.0
    babble_probability: float = 0.0
    coloured_noise_probability: float = 0.0
    babble_talkers: int = 4
    babble_of_other_words: bool = False
    min_snr_db: float = 5.0
    max_snr_db: float = 20.0
    noise_in_room: bool = False
    vtlp_probability: float = 0.0
    min_vtlp_warp: float = 0.9
    max_vtlp_warp: float = 1.1

    def __post_init__(self) -> None:
        for name in ("noise_probability", "gain_probability", "speed_probability", "reverb_probability",
                     "microphone_probability", "babble_probability", "coloured_noise_probability",
                     "vtlp_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)!r}")
        if self.babble_probability + self.coloured_noise_probability > 1.0:
            raise ValueError("babble_probability + coloured_noise_probability must be at most 1")
        for low, high in (("min_gain_db", "max_gain_db"), ("min_speed", "max_speed"), ("min_rt60_s", "max_rt60_s"),
                          ("min_highpass_hz", "max_highpass_hz"), ("min_lowpass_hz", "max_lowpass_hz"),
                          ("min_snr_db", "max_snr_db"), ("min_vtlp_warp", "max_vtlp_warp")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low)}) exceeds {high} ({getattr(self, high)})")
        if self.speed_probability > 0 and not (0.5 <= self.min_speed and self.max_speed <= 2.0):
            raise ValueError(f"speed factors must lie in [0.5, 2], got {self.min_speed}..{self.max_speed}")
        if self.vtlp_probability > 0 and not (0.5 <= self.min_vtlp_warp and self.max_vtlp_warp <= 2.0):
            raise ValueError(f"VTLP warps must lie in [0.5, 2], got {self.min_vtlp_warp}..{self.max_vtlp_warp}")
        if self.gain_to_peak_dbfs and self.max_gain_db > 0:
            raise ValueError(f"a peak level above full scale: max_gain_db={self.max_gain_db} with gain_to_peak_dbfs")
        if self.reverb_probability > 0 and self.reverb_bank_size < 1:
            raise ValueError(f"reverb_bank_size must be >= 1, got {self.reverb_bank_size}")
        if self.babble_probability > 0 and self.babble_talkers < 1:
            raise ValueError(f"babble_talkers must be >= 1, got {self.babble_talkers}")

    @property
    def changes_audio(self) -> bool:
        """Whether :func:`augment_audio` changes anything (else the clean features serve)."""
        return (self.time_shift_ms > 0 or (self.noise_probability > 0 and self.noise_max_amplitude > 0)
                or self.gain_probability > 0 or self.speed_probability > 0 or self.reverb_probability > 0
                or self.microphone_probability > 0 or self.babble_probability > 0
                or self.coloured_noise_probability > 0)

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "AugmentConfig":
        return replace(self, **changes)


NO_AUGMENTATION = AugmentConfig(time_shift_ms=0.0, noise_probability=0.0, time_masks=0, feature_masks=0)


def augment_audio(audio: np.ndarray, config: AugmentConfig, sample_rate_hz: int,
                  rng: np.random.Generator, *, babble_rows: Optional[np.ndarray] = None) -> np.ndarray:
    """Augmented copies of ``audio`` (see the module's docstring for the parts and their order).

    Parameters
    ----------
    audio : int16[n, samples]
    config : AugmentConfig
    sample_rate_hz : int
    rng : numpy.random.Generator
        Every random choice; a part that is off draws nothing, so adding a
        part leaves the others' draws unchanged.
    babble_rows : int array, optional
        With ``config.babble_of_other_words``: the rows of ``audio`` the babble's talkers come from.

    Returns
    -------
    int16[n, samples]
    """
    audio = np.asarray(audio)
    if audio.ndim != 2 or audio.dtype != np.int16:
        raise ValueError(f"audio must be int16[clips, samples], got {audio.dtype}{list(audio.shape)}")
    source = audio
    if config.speed_probability > 0:
        source = perturb_speed(audio, rng.random(len(audio)) < config.speed_probability,
                               rng.uniform(config.min_speed, config.max_speed, size=len(audio)))
    out = np.zeros_like(audio)
    num_samples = audio.shape[1]
    max_shift = int(round(config.time_shift_ms * sample_rate_hz / 1000.0))
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(audio)) if max_shift else np.zeros(len(audio), int)
    for row, shift in enumerate(shifts):
        if shift >= 0:
            out[row, shift:] = source[row, :num_samples - shift]
        else:
            out[row, :shift] = source[row, -shift:]
    if config.reverb_probability > 0 or config.microphone_probability > 0 or config.babble_probability > 0 \
            or config.coloured_noise_probability > 0:
        out = _room_microphone_and_noise(out, config, sample_rate_hz, rng, babble_rows=babble_rows)
    if config.gain_probability > 0:
        scaled = rng.random(len(audio)) < config.gain_probability
        gains_db = rng.uniform(config.min_gain_db, config.max_gain_db, size=int(scaled.sum()))
        if config.gain_to_peak_dbfs:  # the drawn value is the peak level; from the clip's own peak
            peaks = np.abs(out[scaled].astype(np.int32)).max(axis=1) if scaled.any() else np.zeros(0)
            gains_db = gains_db - 20.0 * np.log10(np.maximum(peaks, 1) / 32768.0)
        gains = 10.0 ** (gains_db / 20.0)
        out[scaled] = np.clip(np.rint(out[scaled] * gains[:, None]), -32768, 32767).astype(np.int16)
    if config.noise_probability > 0 and config.noise_max_amplitude > 0:
        noisy = rng.random(len(audio)) < config.noise_probability
        levels = rng.uniform(0.0, config.noise_max_amplitude, size=int(noisy.sum())) * 32768.0
        noise = rng.standard_normal((len(levels), num_samples)) * levels[:, None]
        mixed = out[noisy].astype(np.float64) + noise
        out[noisy] = np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)
    return out


# -- speed ---------------------------------------------------------------------------------------
def speed_ratio(speed: float) -> Tuple[int, int]:
    """``(up, down)`` for the resampler that plays a clip ``speed`` times as fast (nearest k/40)."""
    steps = max(1, int(round(speed * SPEED_STEPS)))
    divisor = math.gcd(SPEED_STEPS, steps)
    return SPEED_STEPS // divisor, steps // divisor


def perturb_speed(audio: np.ndarray, rows: np.ndarray, speeds: np.ndarray) -> np.ndarray:
    """``audio`` (int16[n, samples]) with the clips where ``rows`` is True played ``speeds`` times as fast.

    Each is resampled with the native resampler, then centred in the clip's
    length again (cropped equally at both ends when slower and longer,
    zero-padded equally when faster and shorter).
    """
    from native.resample import resample_poly

    out = audio.copy()
    num_samples = audio.shape[1]
    for row in np.flatnonzero(rows):
        up, down = speed_ratio(float(speeds[row]))
        if up == down:
            continue
        changed = resample_poly(audio[row], up, down)  # float32, full scale 1.0
        start = (len(changed) - num_samples) // 2
        if start >= 0:
            fitted = changed[start:start + num_samples]
        else:
            fitted = np.zeros(num_samples, np.float32)
            fitted[-start:-start + len(changed)] = changed
        out[row] = np.clip(np.rint(fitted * 32768.0), -32768, 32767).astype(np.int16)
    return out


# -- room, microphone, babble and noise -----------------------------------------------------------
def active_rms(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """float64[n]: RMS of each clip over its active 10 ms frames (within 40 dB of its loudest), as
    ``train.kws.acoustics.active_rms_dbfs`` measures it (linear, full scale 1.0; 0 for silence)."""
    frame = max(1, int(round(sample_rate_hz * _ACTIVE_FRAME_MS / 1000.0)))
    num_frames = audio.shape[1] // frame
    if num_frames == 0:
        return np.sqrt(np.mean(np.square(audio, dtype=np.float64), axis=1))
    power = np.mean(np.square(audio[:, :num_frames * frame].reshape(len(audio), num_frames, frame),
                              dtype=np.float64), axis=2)
    loudest = power.max(axis=1, keepdims=True)
    active = power >= loudest * 10.0 ** (-_ACTIVE_FLOOR_DB / 10.0)
    return np.sqrt(np.sum(power * active, axis=1) / np.maximum(active.sum(axis=1), 1))


def add_shifted(out: np.ndarray, audio: np.ndarray, shifts: np.ndarray) -> None:
    """Add each row of ``audio``, moved later by its ``shifts`` (earlier if negative), to ``out`` in place."""
    num_samples = audio.shape[1]
    for row, shift in enumerate(shifts):
        if shift >= 0:
            out[row, shift:] += audio[row, :num_samples - shift]
        else:
            out[row, :shift] += audio[row, -shift:]


def microphone_response(num_bins: int, sample_rate_hz: int, highpass_hz: np.ndarray, lowpass_hz: np.ndarray,
                        tilt_db_per_octave: np.ndarray) -> np.ndarray:
    """float32[n, num_bins]: magnitude responses over ``num_bins`` rfft bins (0 Hz to Nyquist).

    2nd-order Butterworth high-pass and low-pass magnitudes times a tilt of
    ``tilt_db_per_octave`` around 1 kHz (held flat below 62.5 Hz).
    """
    frequency = np.linspace(0.0, sample_rate_hz / 2.0, num_bins, dtype=np.float32)[None, :]
    highpass_hz, lowpass_hz, tilt_db_per_octave = (np.asarray(value, np.float32)[:, None] for value in
                                                   (highpass_hz, lowpass_hz, tilt_db_per_octave))
    highpass = 1.0 / np.sqrt(1.0 + (highpass_hz / np.maximum(frequency, 1e-3)) ** 4)
    lowpass = 1.0 / np.sqrt(1.0 + (frequency / lowpass_hz) ** 4)
    octaves = np.log2(np.maximum(frequency, 62.5) / 1000.0)
    tilt = np.exp2(tilt_db_per_octave * np.float32(math.log2(10.0) / 20.0) * octaves)
    return (highpass * lowpass * tilt).astype(np.float32)


def coloured_noise_batch(colours: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """float32[n, num_samples] unit-RMS noise, row i of colour ``colours[i]`` (an index into
    :data:`NOISE_COLOURS`), shaped like ``train.kws.acoustics.coloured_noise`` (no DC)."""
    white = rng.standard_normal((len(colours), num_samples), dtype=np.float32)
    bins = np.arange(num_samples // 2 + 1, dtype=np.float32)
    bins[0] = 1.0
    shapes = np.stack([bins ** np.float32(-_NOISE_POWER_EXPONENT[name] / 2.0) for name in NOISE_COLOURS])
    shapes[:, 0] = 0.0
    noise = np.fft.irfft(np.fft.rfft(white, axis=1) * shapes[colours], n=num_samples, axis=1).astype(np.float32)
    rms = np.sqrt(np.mean(np.square(noise, dtype=np.float64), axis=1))
    return noise * (1.0 / np.maximum(rms, 1e-12)).astype(np.float32)[:, None]


@dataclass(frozen=True)
class _RoomDraws:
    """Every random choice of parts 3-5 for one batch, drawn before any clip is processed (so the
    result does not depend on how the work is chunked)."""

    reverb: np.ndarray           # bool[n]
    room: np.ndarray             # int[n], index into the bank
    bank: tuple                  # impulse responses
    microphone: np.ndarray       # bool[n]
    highpass_hz: np.ndarray      # float[n]
    lowpass_hz: np.ndarray
    tilt_db_per_octave: np.ndarray
    babble: np.ndarray           # bool[n]
    coloured: np.ndarray         # bool[n]
    colour: np.ndarray           # int[n], index into NOISE_COLOURS
    snr_db: np.ndarray           # float[n]
    others: np.ndarray           # int[n, talkers]: babble sources, never the row itself
    talker_gains: np.ndarray     # float[n, talkers], linear
    talker_shifts: np.ndarray    # int[n, talkers], samples


def _draw_room(n: int, num_samples: int, config: AugmentConfig, sample_rate_hz: int,
               rng: np.random.Generator, *, babble_rows: Optional[np.ndarray] = None) -> _RoomDraws:
    def maybe(probability):
        return rng.random(n) < probability if probability > 0 else np.zeros(n, bool)

    reverb = maybe(config.reverb_probability)
    bank = ()
    room = np.zeros(n, np.int64)
    if reverb.any():
        from train.kws.acoustics import room_impulse_response

        rt60s = rng.uniform(config.min_rt60_s, config.max_rt60_s, size=config.reverb_bank_size)
        # The response beyond the clip's length never reaches the clip's samples: cut it there.
        bank = tuple(room_impulse_response(rt60_s=float(rt60), sample_rate_hz=sample_rate_hz, rng=rng)[:num_samples]
                     for rt60 in rt60s)
        room = rng.integers(0, len(bank), size=n)
    microphone = maybe(config.microphone_probability)
    highpass = rng.uniform(config.min_highpass_hz, config.max_highpass_hz, size=n) if microphone.any() else None
    lowpass = rng.uniform(config.min_lowpass_hz, config.max_lowpass_hz, size=n) if microphone.any() else None
    tilt = (rng.uniform(-config.max_tilt_db_per_octave, config.max_tilt_db_per_octave, size=n)
            if microphone.any() else None)
    babble = coloured = np.zeros(n, bool)
    snr_db = colour = others = gains = shifts = None
    if config.babble_probability > 0 or config.coloured_noise_probability > 0:
        draw = rng.random(n)
        babble = draw < config.babble_probability
        coloured = ~babble & (draw < config.babble_probability + config.coloured_noise_probability)
        snr_db = rng.uniform(config.min_snr_db, config.max_snr_db, size=n)
        colour = rng.integers(0, len(NOISE_COLOURS), size=n)
        talkers = min(config.babble_talkers, n - 1)
        if babble.any() and talkers < 1:
            babble = np.zeros(n, bool)  # a batch of one clip has no other clip to babble with
        if babble.any():
            if config.babble_of_other_words:
                others = _talkers_from(babble_rows, n, talkers, rng)
            else:
                others = rng.integers(0, n - 1, size=(n, talkers))
                others += others >= np.arange(n)[:, None]  # skip the clip itself
            gains = 10.0 ** (rng.uniform(-6.0, 0.0, size=(n, talkers)) / 20.0)
            max_shift = num_samples // 4
            shifts = rng.integers(-max_shift, max_shift + 1, size=(n, talkers))
    return _RoomDraws(reverb=reverb, room=room, bank=bank, microphone=microphone, highpass_hz=highpass,
                      lowpass_hz=lowpass, tilt_db_per_octave=tilt, babble=babble, coloured=coloured, colour=colour,
                      snr_db=snr_db, others=others, talker_gains=gains, talker_shifts=shifts)


def _talkers_from(babble_rows: Optional[np.ndarray], n: int, talkers: int, rng: np.random.Generator) -> np.ndarray:
    """int[n, talkers]: rows of ``babble_rows`` (of n clips) for each clip, never the clip itself."""
    if babble_rows is None:
        raise ValueError("babble_of_other_words needs babble_rows: the rows of the clips that are other speech")
    pool = np.unique(np.asarray(babble_rows, dtype=np.int64))
    if len(pool) < 2 or pool[0] < 0 or pool[-1] >= n:
        raise ValueError(f"babble_rows must name at least two of the {n} clips, got {len(pool)} "
                         f"(from {pool[0] if len(pool) else None} to {pool[-1] if len(pool) else None})")
    own = np.full(n, len(pool))  # a clip's own place in the pool, len(pool) where it is not one of them
    own[pool] = np.arange(len(pool))
    in_pool = own < len(pool)
    places = rng.integers(0, np.where(in_pool, len(pool) - 1, len(pool))[:, None], size=(n, talkers))
    places += (places >= own[:, None]) & in_pool[:, None]  # skip the clip itself
    return pool[places]


def _room_microphone_and_noise(audio: np.ndarray, config: AugmentConfig, sample_rate_hz: int,
                               rng: np.random.Generator, *, babble_rows: Optional[np.ndarray] = None) -> np.ndarray:
    """Parts 3-5 on int16 clips: reverberation, microphone, babble or coloured noise (peaks kept); with
    ``noise_in_room`` the babble or noise first, then the room and the microphone.

    The random choices are drawn first; the clips are then processed in
    chunks of ``_CHUNK_CLIPS`` (FFT convolution in batches).
    """
    from scipy import fft as sfft

    n, num_samples = audio.shape
    draws = _draw_room(n, num_samples, config, sample_rate_hz, rng, babble_rows=babble_rows)
    noise_rng = np.random.default_rng(rng.integers(0, 2 ** 63)) if draws.coloured.any() else None
    reverb_size = sfft.next_fast_len(2 * num_samples - 1, real=True)
    # Room for the zero-phase filter's two tails (its response rings for a few ms at 50 Hz).
    microphone_size = sfft.next_fast_len(num_samples + _FILTER_TAIL_SAMPLES, real=True)
    bank_spectra = np.stack([sfft.rfft(response, n=reverb_size) for response in draws.bank]) if draws.bank else None
    source_levels = active_rms(audio.astype(np.float32) / 32768.0, sample_rate_hz) if draws.babble.any() else None

    def room(clips, chunk, alive):
        rows = np.flatnonzero(draws.reverb[chunk] & alive)
        if len(rows):
            spectra = sfft.rfft(clips[rows], n=reverb_size, axis=1) * bank_spectra[draws.room[chunk[rows]]]
            clips[rows] = sfft.irfft(spectra, n=reverb_size, axis=1)[:, :num_samples]

    def microphone(clips, chunk, alive):
        rows = np.flatnonzero(draws.microphone[chunk] & alive)
        if len(rows):
            picked = chunk[rows]
            response = microphone_response(microphone_size // 2 + 1, sample_rate_hz, draws.highpass_hz[picked],
                                           draws.lowpass_hz[picked], draws.tilt_db_per_octave[picked])
            clips[rows] = sfft.irfft(sfft.rfft(clips[rows], n=microphone_size, axis=1) * response,
                                     n=microphone_size, axis=1)[:, :num_samples]

    def babble_or_noise(clips, chunk, alive):  # at the drawn SNR against the word as it is then
        babble_rows = np.flatnonzero(draws.babble[chunk] & alive)
        noise_rows = np.flatnonzero(draws.coloured[chunk] & alive)
        if len(babble_rows) or len(noise_rows):
            rows = np.concatenate([babble_rows, noise_rows])
            noise = np.zeros((len(rows), num_samples), np.float32)
            if len(babble_rows):
                picked = chunk[babble_rows]
                for talker in range(draws.others.shape[1]):
                    sources = draws.others[picked, talker]
                    scale = np.where(source_levels[sources] > 0, draws.talker_gains[picked, talker]
                                     / np.maximum(source_levels[sources], 1e-12), 0.0).astype(np.float32)
                    add_shifted(noise[:len(babble_rows)], audio[sources] * (scale / 32768.0)[:, None],
                                draws.talker_shifts[picked, talker])
            if len(noise_rows):
                noise[len(babble_rows):] = coloured_noise_batch(draws.colour[chunk[noise_rows]], num_samples,
                                                                noise_rng)
            signal_rms = active_rms(clips[rows], sample_rate_hz)
            noise_rms = np.sqrt(np.mean(np.square(noise, dtype=np.float64), axis=1))
            gains = np.where(noise_rms > 0, signal_rms / np.maximum(noise_rms, 1e-12)
                             * 10.0 ** (-draws.snr_db[chunk[rows]] / 20.0), 0.0)
            clips[rows] += (gains[:, None] * noise).astype(np.float32)

    stages = (babble_or_noise, room, microphone) if config.noise_in_room else (room, microphone, babble_or_noise)
    out = audio.copy()
    for start in range(0, n, _CHUNK_CLIPS):
        chunk = np.arange(start, min(start + _CHUNK_CLIPS, n))
        clips = audio[chunk].astype(np.float32) / 32768.0
        peaks = np.abs(clips).max(axis=1)
        alive = peaks > 0  # silent clips stay silent
        for stage in stages:
            stage(clips, chunk, alive)
        changed_peaks = np.abs(clips).max(axis=1)
        clips *= np.where(changed_peaks > 0, peaks / np.maximum(changed_peaks, 1e-12), 0.0)[:, None].astype(np.float32)
        out[chunk] = np.clip(np.rint(clips * 32768.0), -32768, 32767).astype(np.int16)
    return out


# -- features ------------------------------------------------------------------------------------
def augmented_features(audio: np.ndarray, config: AugmentConfig, params, rng: np.random.Generator, *,
                       backend: str = "native", babble_rows: Optional[np.ndarray] = None) -> np.ndarray:
    """One epoch's features of ``audio`` (int16[n, samples]): :func:`augment_audio` when it changes
    anything (``babble_rows``: see there), the features of ``params`` (a ``FrontendParams``), and VTLP
    when it is on.

    Returns float32[n, frames, features]; with the default config, exactly
    ``compute_features(augment_audio(audio, config, rate, rng), params)``.
    """
    from train.kws.features import compute_features

    if config.changes_audio:
        audio = augment_audio(audio, config, params.sample_rate_hz, rng, babble_rows=babble_rows)
    if config.vtlp_probability <= 0:
        return compute_features(audio, params, backend=backend)
    if params.feature_kind not in ("log_mel", "mfcc"):
        raise ValueError(f"VTLP warps log-mel or MFCC features, not {params.feature_kind!r}")
    log_mel = compute_features(audio, replace(params, feature_kind="log_mel"), backend=backend)
    warps = np.where(rng.random(len(audio)) < config.vtlp_probability,
                     rng.uniform(config.min_vtlp_warp, config.max_vtlp_warp, size=len(audio)), 1.0)
    warped = warp_mel_axis(log_mel, warps, params)
    if params.feature_kind == "log_mel":
        return warped
    from native.frontend import mfcc_dct_matrix

    return (warped @ mfcc_dct_matrix(params.num_mfccs, params.num_mel_bins).T).astype(np.float32)


def _hz_to_mel(frequency_hz):
    return 1127.0 * np.log1p(np.asarray(frequency_hz, np.float64) / 700.0)  # HTK, as the frontend


def warp_mel_axis(log_mel: np.ndarray, warps: np.ndarray, params) -> np.ndarray:
    """Vocal tract length perturbation of log-mel features.

    A talker with a vocal tract ``1 / warp`` times as long has its spectrum
    ``S(f / warp)`` (formants moved up by ``warp``). Each mel filter's centre
    frequency ``f`` therefore reads the clip's log-mel at ``f / warp``,
    interpolated linearly between the neighbouring filters' centres (on the
    mel scale; held at the edge filters beyond them).

    Parameters
    ----------
    log_mel : float32[n, frames, num_mel_bins]
    warps : float[n], 1.0 leaves a clip as it is
    params : FrontendParams (mel bins and band edges)

    Returns
    -------
    float32[n, frames, num_mel_bins]
    """
    log_mel = np.asarray(log_mel, dtype=np.float32)
    warps = np.asarray(warps, dtype=np.float64)
    num_bins = params.num_mel_bins
    if log_mel.ndim != 3 or log_mel.shape[2] != num_bins or warps.shape != (len(log_mel),):
        raise ValueError(f"expected log_mel [n, frames, {num_bins}] and warps [n], got {log_mel.shape}, {warps.shape}")
    if not np.all(warps > 0):
        raise ValueError("warps must be positive")
    edges_mel = np.linspace(_hz_to_mel(params.lower_edge_hz), _hz_to_mel(params.upper_edge_hz), num_bins + 2)
    centres_mel = edges_mel[1:-1]
    centres_hz = 700.0 * np.expm1(centres_mel / 1127.0)
    read_mel = _hz_to_mel(centres_hz[None, :] / warps[:, None])  # [n, bins]
    position = np.clip(np.interp(read_mel, centres_mel, np.arange(num_bins, dtype=np.float64)), 0, num_bins - 1)
    below = np.clip(np.floor(position), 0, max(num_bins - 2, 0)).astype(np.int64)
    fraction = (position - below).astype(np.float32)[:, None, :]
    lower = np.take_along_axis(log_mel, below[:, None, :], axis=2)
    upper = np.take_along_axis(log_mel, np.minimum(below + 1, num_bins - 1)[:, None, :], axis=2)
    return (lower + fraction * (upper - lower)).astype(np.float32)


def mask_features(features: np.ndarray, config: AugmentConfig, rng: np.random.Generator,
                  fill_value: float) -> np.ndarray:
    """SpecAugment masks on a copy of ``features`` (float32[n, frames, features]).

    Masked cells take ``fill_value`` (the training mean, which the model maps to zero).
    """
    out = features.copy()
    num_clips, num_frames, num_features = out.shape
    for axis, count, max_width in ((1, config.time_masks, config.time_mask_max_frames),
                                   (2, config.feature_masks, config.feature_mask_max_bins)):
        length = out.shape[axis]
        for _ in range(count):
            widths = rng.integers(0, min(max_width, length) + 1, size=num_clips)
            starts = rng.integers(0, length - widths + 1)
            positions = np.arange(length)
            masked = (positions[None, :] >= starts[:, None]) & (positions[None, :] < (starts + widths)[:, None])
            if axis == 1:
                out[masked[:, :, None].repeat(num_features, axis=2)] = fill_value
            else:
                out[masked[:, None, :].repeat(num_frames, axis=1)] = fill_value
    return out


def mix_up(features: np.ndarray, targets: np.ndarray, alpha: float,
           rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al., 2018): each example blended with a random partner among the ``n`` given.

    ``features`` float32[n, ...] and ``targets`` float32[n, labels] are blended with the same
    weight per example, drawn from Beta(alpha, alpha); returns new float32 arrays.
    """
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be > 0, got {alpha}")
    if len(features) != len(targets):
        raise ValueError(f"{len(features)} feature rows but {len(targets)} target rows")
    weights = rng.beta(alpha, alpha, size=len(features)).astype(np.float32)
    partners = rng.permutation(len(features))
    # float32 weights keep float32 inputs float32: no second copy of an epoch's features
    feature_weights = weights.reshape((-1,) + (1,) * (features.ndim - 1))
    mixed_features = feature_weights * features + (1 - feature_weights) * features[partners]
    mixed_targets = weights[:, None] * targets + (1 - weights[:, None]) * targets[partners]
    return mixed_features.astype(np.float32, copy=False), mixed_targets.astype(np.float32, copy=False)
