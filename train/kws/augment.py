"""Cheap augmentation for keyword spotting: audio time shift and noise, SpecAugment masks.

Mini Speech Commands has 800 training clips per word, so a DS-CNN overfits
within a few dozen epochs. Each epoch sees freshly augmented copies: the audio
is shifted and mixed with white noise (then featurised by the native frontend,
which takes well under a second for the whole split), and the features get
SpecAugment-style time and frequency masks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


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
    time_masks, time_mask_max_frames : int
        SpecAugment masks along time: how many, and up to how wide.
    feature_masks, feature_mask_max_bins : int
        Masks along the feature axis (meaningful for log-mel, not MFCC).
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

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENTATION = AugmentConfig(time_shift_ms=0.0, noise_probability=0.0, time_masks=0, feature_masks=0)


def augment_audio(audio: np.ndarray, config: AugmentConfig, sample_rate_hz: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Shifted, noisy copies of ``audio``.

    Parameters
    ----------
    audio : int16[n, samples]

    Returns
    -------
    int16[n, samples]
    """
    out = np.zeros_like(audio)
    num_samples = audio.shape[1]
    max_shift = int(round(config.time_shift_ms * sample_rate_hz / 1000.0))
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(audio)) if max_shift else np.zeros(len(audio), int)
    for row, shift in enumerate(shifts):
        if shift >= 0:
            out[row, shift:] = audio[row, :num_samples - shift]
        else:
            out[row, :shift] = audio[row, -shift:]
    if config.gain_probability > 0:
        scaled = rng.random(len(audio)) < config.gain_probability
        gains = 10.0 ** (rng.uniform(config.min_gain_db, config.max_gain_db, size=int(scaled.sum())) / 20.0)
        out[scaled] = np.clip(np.rint(out[scaled] * gains[:, None]), -32768, 32767).astype(np.int16)
    if config.noise_probability > 0 and config.noise_max_amplitude > 0:
        noisy = rng.random(len(audio)) < config.noise_probability
        levels = rng.uniform(0.0, config.noise_max_amplitude, size=int(noisy.sum())) * 32768.0
        noise = rng.standard_normal((len(levels), num_samples)) * levels[:, None]
        mixed = out[noisy].astype(np.float64) + noise
        out[noisy] = np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)
    return out


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
