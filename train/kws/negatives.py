"""Negative and synthetic keyword audio for open-set keyword spotting, made here and reproducible.

Mini Speech Commands holds only the eight keywords, so "anything else" is built
from what Debian installs:

* **Synthetic speech** (class ``_unknown_``): words of the ``wamerican`` list
  (``/usr/share/dict/american-english``) spoken by ``flite`` and ``festival``
  at several rates and pitches (kinds ``tts_word``, and ``tts_hard`` for the
  hard negatives of :data:`HARD_NEGATIVES`, which share sounds with the
  keywords). True homophones of a keyword (:data:`HOMOPHONES`, and any word
  that flite's lexicon pronounces exactly like a keyword) are never used: no
  model can or should reject them.
* **Derived from the split's own keyword clips** (class ``_unknown_``):
  ``reversed`` (time-reversed clips), ``half`` (the first or last half of the
  spoken part; the other half replaced by the clip's background level),
  ``splice`` (the first half of one word followed by the second half of a
  different word), ``babble`` (3 to 6 clips overlapped, shifted) and
  ``clipped`` (a reversed clip or babble driven 6 to 20 dB past full scale and
  hard-clipped; a clipped *keyword* would still be the keyword, so it is not
  made).
* **Non-speech** (class ``_silence_``): ``noise_white`` / ``noise_pink`` /
  ``noise_brown`` at -75 to -30 dBFS RMS, ``hum`` (50/60 Hz mains and
  harmonics, -70 to -35 dBFS), ``room_tone`` (pink or brown noise at -85 to
  -60 dBFS: a quiet room) and ``quiet`` (digital silence or 1-2 LSB of
  dither: a muted microphone); for training only and where a recipe asks for
  it (:data:`OPT_IN_KINDS`), ``tonal`` (one to four partials, steady, gliding
  or warbling, held, pulsed or struck, at peaks of -35 to -3 dBFS: beeps,
  alarms, whistles, music, machines; the models fired on such sounds,
  ``benchmarks/non_speech.py``, which measures them on sounds of its own making).
* **Babble of other words** (class ``_unknown_``, for training only and where a recipe asks for it,
  :data:`OPT_IN_KINDS`): ``babble_words``, 3 to 6 of the split's spoken non-keyword words overlapped
  as :func:`train.kws.acoustics.babble` overlaps keyword clips: people talking in the background, the
  audio of the streams' babble stretches (``babble`` clips overlap keywords, every talker saying one).
* **Synthetic keywords** (:func:`synthetic_keywords`, class = the keyword,
  kind ``tts_keyword``): the eight keywords spoken by the split's voices;
  ``register="raised"`` speaks them higher (pitch and formants), and
  :func:`raised_words` other words so, for training that asks for it
  (``python -m train.kws --raised-voices``); ``accented=True`` has women's
  voices of other languages say them (:data:`ACCENTED_VOICES`,
  ``python -m train.kws --accented-voices``).

Splits keep evaluation honest. Voices are speaker-disjoint (:data:`VOICES`):
train speaks with kal (flite ``kal``, ``kal16``, festival ``kal_diphone``)
and awb, validation with rms, test with slt (flite ``slt`` and festival
``cmu_us_slt_arctic_hts``). Words are split by a stable hash of the word
(:func:`word_split`), so validation and test words are never training words.
Derived negatives come only from the clips of the split they are built for.

Each synthesized word is resampled to 16 kHz with
:func:`native.resample.resample_poly`, trimmed to its spoken part, dropped if
that is longer than one second (1 to 4 % of the words, measured; spare words
drawn in advance take their places, and the manifest counts them), scaled to
a random peak of -30 to -3 dBFS, placed at a random offset in a one-second
clip, and given a low noise floor (-80 to -55 dBFS RMS, at least 30 dB under
the peak) so that digital silence around a word does not tell synthetic
speech from the dataset's recordings.

Everything is seeded and cached under ``<data folder>/kws_generated/<split>/``
as ``<product>.npz`` (int16 audio and per-clip metadata) beside
``<product>.manifest.json`` (the request, engine versions, words, voices,
settings of every clip, sha256 of the audio and of the input clips). A cache
whose request differs, or whose audio checksum does not match, is rebuilt.

Espeak-ng is kept for an independent check: :func:`synthesize` can speak with
it, but no split here has an espeak-ng voice (a test guards this); only
``benchmarks/espeak_check.py`` uses it, to measure delivered models, never to
train or choose them.

Command line: ``python -m train.kws.negatives --split all`` builds (or checks)
the default caches.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from pi_runtime.arguments import non_negative_int, positive_float, run_command
from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL
from train.kws import acoustics
from train.kws.data import LABELS
from train.kws.evaluate import clip_name

KEYWORDS: Tuple[str, ...] = LABELS
SPLITS = ("train", "val", "test")
SAMPLE_RATE_HZ = 16000
CLIP_LENGTH_SAMPLES = 16000
WORD_LIST_PATH = Path("/usr/share/dict/american-english")
APT_INSTALL_LINE = "sudo apt-get install flite festival festvox-kallpc16k festvox-us-slt-hts wamerican"
ESPEAK_INSTALL_LINE = "sudo apt-get install espeak-ng"
ENGINES = ("flite", "festival", "espeak-ng")
GENERATOR_VERSION = 1  # bump when the generated audio changes for the same request
CACHE_FOLDER = "kws_generated"

# -- voices -------------------------------------------------------------------


_VOICE_FIELDS_ADDED = {"spellings": ()}  # Voice's later fields and their defaults


@dataclass(frozen=True)
class Voice:
    """One synthetic voice.

    Attributes
    ----------
    name : str
        ``<engine>_<voice>``, as it appears in manifests.
    engine : "flite", "festival" or "espeak-ng" (the last for the independent check only)
    engine_voice : str
        flite's ``-voice`` name, festival's voice (``kal_diphone`` selects ``(voice_kal_diphone)``), or
        espeak-ng's ``-v`` voice with its variant (``en-gb-scotland+f2``).
    speaker : str
        The person behind the voice: splits are disjoint in speakers, not only in voices.
    native_pitch : bool
        Whether the engine moves its own pitch. Where it does not (flite rms and
        festival's HTS slt leave their output byte-identical under
        ``int_f0_target_mean`` / ``-fm``), the pitch is changed by resampling,
        which changes the tempo by the same factor.
    base_f0_hz : float
        The voice's measured median pitch, the reference of the pitch factor (espeak-ng takes the
        factor as its own pitch setting instead, see :data:`ESPEAK_DEFAULT_PITCH`).
    spellings : pairs (keyword, text)
        How a voice of another language is made to say each keyword with its own letter-to-sound rules
        (``("yes", "ies")``); empty for the English voices, which are given the word.
    """

    name: str
    engine: str
    engine_voice: str
    speaker: str
    native_pitch: bool
    base_f0_hz: float
    spellings: Tuple[Tuple[str, str], ...] = ()

    @property
    def is_hts(self) -> bool:
        """festival's HTS voices take their speed from the engine's parameters, not ``Duration_Stretch``."""
        return self.engine == "festival" and self.engine_voice.endswith("_hts")

    def spelling(self, word: str) -> str:
        """The text this voice is given to say ``word``: its respelling (:attr:`spellings`, for a voice whose
        letter-to-sound rules are another language's) or the word itself."""
        return dict(self.spellings).get(word, word)

    def request(self) -> dict:
        """The voice as a cache request holds it: the fields added since caches were first made only where
        they differ from their defaults, so the English voices' caches stay valid."""
        return {key: value for key, value in self.__dict__.items()
                if key not in _VOICE_FIELDS_ADDED or value != _VOICE_FIELDS_ADDED[key]}


VOICES: Dict[str, Tuple[Voice, ...]] = {
    "train": (Voice("flite_kal", "flite", "kal", "kal", True, 99.0),
              Voice("flite_kal16", "flite", "kal16", "kal", True, 99.0),
              Voice("festival_kal_diphone", "festival", "kal_diphone", "kal", True, 105.0),
              Voice("flite_awb", "flite", "awb", "awb", True, 128.0)),
    "val": (Voice("flite_rms", "flite", "rms", "rms", False, 84.0),),
    "test": (Voice("flite_slt", "flite", "slt", "slt", True, 167.0),
             Voice("festival_cmu_us_slt_arctic_hts", "festival", "cmu_us_slt_arctic_hts", "slt", False, 167.0)),
}
"""Speaker-disjoint voices of each split (flite's ``awb_time`` is a limited-domain voice and is not used)."""

# Respellings of the keywords in the letters of Italian, and of Czech and Finnish (which
# write the English "y" sound as "j"): each voice's own rules then say them as a speaker of its language
# would say the English word.
_ROMANCE_SPELLINGS = (("down", "daun"), ("go", "gou"), ("left", "left"), ("no", "nou"), ("right", "rait"),
                      ("stop", "stop"), ("up", "ap"), ("yes", "ies"))
_J_SPELLINGS = tuple((word, {"yes": "jes"}.get(word, text)) for word, text in _ROMANCE_SPELLINGS)
ACCENTED_VOICES: Dict[str, Tuple[Voice, ...]] = {
    "train": (Voice("festival_lp_diphone", "festival", "lp_diphone", "lp", False, 205.0, _ROMANCE_SPELLINGS),
              Voice("festival_czech_dita", "festival", "czech_dita", "dita", False, 229.0, _J_SPELLINGS)),
    "val": (Voice("festival_suo_fi_lj_diphone", "festival", "suo_fi_lj_diphone", "lj", False, 160.0,
                  _J_SPELLINGS),),
    "test": (),
}
"""Women's voices of other languages (Italian and Czech; Finnish for validation) saying the keywords with
an accent (``python -m train.kws --accented-voices``): every English voice Debian installs for training is
a man's, and its only English woman's voice is the held-out test voice. None of them moves its pitch
through the intonation parameters (the same audio for any target, measured), so the pitch factor
resamples, tempo with it. ``base_f0_hz``: pitch measured on a spoken keyword. (Catalan's HTS voice,
``festvox-ca-ona-hts``, breathes for half a second before each word, which trimming cannot tell from
the quiet "s" of "stop", so it is not used.)"""
ACCENTED_INSTALL_LINE = "sudo apt-get install festvox-italp16k festvox-czech-dita festvox-suopuhe-lj"

DURATION_STRETCH_RANGE = (0.8, 1.3)       # > 1 speaks more slowly
NATIVE_PITCH_FACTOR_RANGE = (0.85, 1.2)   # times the voice's base pitch
RESAMPLED_PITCH_FACTOR_RANGE = (0.9, 1.1)  # pitch and tempo together, where the engine cannot move its pitch
# The raised register of the synthetic keywords (``register="raised"``): every training voice is a man's
# (median pitch 99-128 Hz, at most ~150 Hz with the factors above) while half of the people who speak to a
# microphone are women and children. The engine lifts the pitch into their range (kal 139-198 Hz, awb
# 179-256 Hz) and playing the result faster lifts the formants too, as shorter vocal tracts do.
REGISTERS = ("natural", "raised")
RAISED_PITCH_FACTOR_RANGE = (1.4, 2.0)     # times the voice's base pitch, where the engine moves it
RAISED_SPEED_FACTOR_RANGE = (1.0, 1.2)     # played faster: formants, pitch and tempo together
# What a cached product in the raised register depends on beyond the natural one's request.
RAISED_REQUEST = {"register": "raised", "raised_pitch_factor": RAISED_PITCH_FACTOR_RANGE,
                  "raised_speed_factor": RAISED_SPEED_FACTOR_RANGE}
PEAK_DBFS_RANGE = (-30.0, -3.0)
# espeak-ng's rate and pitch settings at a stretch and a pitch factor of 1 (its defaults); a stretch divides
# the rate (words per minute), a pitch factor multiplies its pitch setting (0-99).
ESPEAK_DEFAULT_WORDS_PER_MINUTE = 175
ESPEAK_DEFAULT_PITCH = 50
NOISE_FLOOR_DBFS_RANGE = (-80.0, -55.0)
NOISE_FLOOR_BELOW_PEAK_DB = 30.0

# -- words --------------------------------------------------------------------

HOMOPHONES: Dict[str, Tuple[str, ...]] = {
    "no": ("know", "noh"),
    "right": ("write", "rite", "wright", "wrights", "rites", "writes", "rights"),
}
"""Words pronounced exactly like a keyword (or like its plural, which is kept out too). Never used as
negatives; :func:`homophone_of` also checks every sampled word against flite's lexicon."""

HARD_NEGATIVES: Dict[str, Tuple[str, ...]] = {
    "down": ("town", "gown", "dawn", "done", "dog", "drown", "brown", "crown", "noun", "sound", "round", "frown",
             "clown", "dune", "downy", "doubt", "loud"),
    "go": ("goal", "goat", "ghost", "going", "gopher", "toe", "grow", "glow", "gold", "show", "though", "owe",
           "hole", "code", "dough", "gone"),
    "left": ("lift", "loft", "theft", "lest", "felt", "leaf", "lefty", "deft", "cleft", "west", "lent",
             "laughed", "lifts", "loved"),
    "no": ("now", "nope", "nose", "note", "snow", "new", "gnome", "known", "nor", "nod", "knob", "noel",
           "show", "toe"),
    "right": ("ride", "light", "bright", "fright", "rice", "ripe", "riot", "white", "bite", "fight", "rider",
              "tight", "rat", "rod"),
    "stop": ("top", "stopped", "stock", "step", "stuff", "shop", "spot", "stomp", "stoop", "stab", "drop",
             "swap", "strap", "stopper"),
    "up": ("cup", "pup", "cop", "hop", "us", "upon", "oops", "yup", "sup", "pop", "tub", "hut", "upper"),
    "yes": ("yet", "yeah", "yell", "less", "mess", "guess", "yeast", "yep", "chess", "yen", "bless", "dress",
            "mesa"),
}
"""Words that share sounds with a keyword (the issue's list and more), by the keyword they resemble."""

_WORD_PATTERN = re.compile(r"^[a-z]{2,8}$")
# Fractions of the hash range per split: plain words 80/10/10, hard negatives 60/20/20 (there are few).
_WORD_SPLIT_PERCENT = {False: (80, 90), True: (60, 80)}


def hard_negative_words() -> Tuple[str, ...]:
    """All hard negatives, sorted, without repeats."""
    return tuple(sorted({word for words in HARD_NEGATIVES.values() for word in words}))


def word_split(word: str, *, hard: bool = False) -> str:
    """The split a word belongs to: a stable hash of the word (sha256), the same on every machine.

    Plain words go 80 / 10 / 10 % to train / val / test, hard negatives 60 / 20 / 20 %.
    """
    percent = int(hashlib.sha256(word.encode("utf-8")).hexdigest()[:8], 16) % 100
    train_end, val_end = _WORD_SPLIT_PERCENT[hard]
    return "train" if percent < train_end else "val" if percent < val_end else "test"


def dictionary_words(path: Path = WORD_LIST_PATH) -> Tuple[str, ...]:
    """Lower-case alphabetic words of 2 to 8 letters from the word list, sorted, without
    keywords, listed homophones and hard negatives (those have their own kind)."""
    if not Path(path).is_file():
        raise RuntimeError(f"word list {path} not found (Debian package wamerican); install with:\n"
                           f"  {APT_INSTALL_LINE}")
    excluded = set(KEYWORDS) | _listed_homophones() | set(hard_negative_words())
    words = {line.strip() for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines()}
    return tuple(sorted(word for word in words if _WORD_PATTERN.match(word) and word not in excluded))


def _listed_homophones() -> set:
    return {word for words in HOMOPHONES.values() for word in words}


def pronunciations(words: Sequence[str]) -> Dict[str, Tuple[str, ...]]:
    """Phones of each word by flite's lexicon and letter-to-sound rules (``t2p``), stress marks removed.

    Words are sent in batches, each followed by a full stop so that flite
    marks the boundaries with a pause; a batch whose pauses do not line up is
    looked up word by word.
    """
    _require_programs(("t2p",))
    result: Dict[str, Tuple[str, ...]] = {}
    batch_size = 1000
    for start in range(0, len(words), batch_size):
        batch = list(words[start:start + batch_size])
        groups = _t2p_groups(" ".join(f"{word}." for word in batch))
        if len(groups) != len(batch):
            groups = [tuple(phone for group in _t2p_groups(f"{word}.") for phone in group) for word in batch]
        result.update(zip(batch, groups))
    return result


def _t2p_groups(text: str) -> List[Tuple[str, ...]]:
    output = subprocess.run(["t2p", text], capture_output=True, text=True, check=True).stdout.split()
    groups, current = [], []
    for phone in output + ["pau"]:
        if phone == "pau":
            if current:
                groups.append(tuple(current))
            current = []
        else:
            current.append(phone.rstrip("012"))
    return groups


def homophone_of(words: Sequence[str]) -> Dict[str, str]:
    """The words among ``words`` that sound exactly like a keyword: ``{word: keyword}``.

    A word is a homophone when it is listed in :data:`HOMOPHONES` or when
    flite's lexicon gives it the same phones as the keyword (stress ignored).
    """
    listed = {word: keyword for keyword, group in HOMOPHONES.items() for word in group}
    found = {word: listed[word] for word in words if word in listed}
    keyword_phones = {phones: keyword for keyword, phones in pronunciations(KEYWORDS).items()}
    for word, phones in pronunciations([word for word in words if word not in found]).items():
        if phones in keyword_phones and word not in KEYWORDS:
            found[word] = keyword_phones[phones]
    return found


def split_overlaps(manifests: Dict[str, dict]) -> Dict[str, List[str]]:
    """What two splits' generated sets share: ``{"train/val words": [...], "train/val speakers": [...], ...}``.

    ``manifests`` maps split names to their negatives manifests (:func:`read_manifest`); every list is
    empty when words (plain and hard) and speakers are disjoint, as they must be.
    """
    overlaps: Dict[str, List[str]] = {}
    names = [name for name in SPLITS if name in manifests]
    for index, first in enumerate(names):
        for second in names[index + 1:]:
            words = [set(manifests[name].get("words", [])) | set(manifests[name].get("hard_words", []))
                     for name in (first, second)]
            speakers = [set(manifests[name]["speakers"]) for name in (first, second)]
            overlaps[f"{first}/{second} words"] = sorted(words[0] & words[1])
            overlaps[f"{first}/{second} speakers"] = sorted(speakers[0] & speakers[1])
    return overlaps


# -- the generated clips ------------------------------------------------------


@dataclass(frozen=True)
class GeneratedClips:
    """Generated one-second clips with their class, kind and source.

    Attributes
    ----------
    audio : int16[n, 16000]
        PCM at 16 kHz.
    classes : tuple of str
        Per clip: a keyword, ``"_unknown_"`` or ``"_silence_"``.
    kinds : tuple of str
        Per clip: how it was made (``"tts_word"``, ``"tts_hard"``, ``"tts_keyword"``,
        ``"reversed"``, ``"half"``, ``"splice"``, ``"babble"``, ``"clipped"``,
        ``"noise_white"``, ``"noise_pink"``, ``"noise_brown"``, ``"hum"``,
        ``"room_tone"``, ``"quiet"``; for training only ``"tonal"``, ``"babble_words"``).
    sources : tuple of str
        Per clip: word, voice and settings, or the names of the source clips.
    """

    audio: np.ndarray
    classes: Tuple[str, ...]
    kinds: Tuple[str, ...]
    sources: Tuple[str, ...]

    def __post_init__(self):
        if self.audio.ndim != 2 or self.audio.dtype != np.int16:
            raise ValueError(f"audio must be int16[n, samples], got {self.audio.dtype}{list(self.audio.shape)}")
        if not len(self.audio) == len(self.classes) == len(self.kinds) == len(self.sources):
            raise ValueError("audio, classes, kinds and sources must have one entry per clip")

    def __len__(self) -> int:
        return len(self.audio)

    def select(self, kinds: Union[str, Iterable[str]]) -> "GeneratedClips":
        """The clips of the given kind(s), in their order."""
        wanted = {kinds} if isinstance(kinds, str) else set(kinds)
        rows = [row for row, kind in enumerate(self.kinds) if kind in wanted]
        return self.rows(rows)

    def select_classes(self, classes: Union[str, Iterable[str]]) -> "GeneratedClips":
        """The clips of the given class(es), in their order."""
        wanted = {classes} if isinstance(classes, str) else set(classes)
        return self.rows([row for row, name in enumerate(self.classes) if name in wanted])

    def without_kinds(self, kinds: Iterable[str]) -> "GeneratedClips":
        """The clips of every other kind, in their order."""
        unwanted = set(kinds)
        return self.rows([row for row, kind in enumerate(self.kinds) if kind not in unwanted])

    def counts(self) -> Dict[str, int]:
        """Number of clips per kind, in order of first appearance."""
        result: Dict[str, int] = {}
        for kind in self.kinds:
            result[kind] = result.get(kind, 0) + 1
        return result

    def rows(self, rows: Sequence[int]) -> "GeneratedClips":
        """The clips at ``rows``, in that order."""
        return GeneratedClips(audio=self.audio[list(rows)], classes=tuple(self.classes[r] for r in rows),
                              kinds=tuple(self.kinds[r] for r in rows),
                              sources=tuple(self.sources[r] for r in rows))


def concatenate(parts: Sequence[GeneratedClips]) -> GeneratedClips:
    """The clips of ``parts`` one after another."""
    parts = list(parts)
    if not parts:
        return GeneratedClips(np.zeros((0, CLIP_LENGTH_SAMPLES), np.int16), (), (), ())
    return GeneratedClips(audio=np.concatenate([part.audio for part in parts]),
                          classes=sum((part.classes for part in parts), ()),
                          kinds=sum((part.kinds for part in parts), ()),
                          sources=sum((part.sources for part in parts), ()))


# -- sizes --------------------------------------------------------------------

_TRAIN_SIZES = {"tts_word": 3000, "tts_hard": 480, "reversed": 400, "half": 400, "splice": 400, "babble": 300,
                "clipped": 100, "noise_white": 150, "noise_pink": 150, "noise_brown": 150, "hum": 150,
                "room_tone": 120, "quiet": 80, "tonal": 300, "babble_words": 300}
_EVAL_SIZES = {"tts_word": 800, "tts_hard": 160, "reversed": 100, "half": 100, "splice": 100, "babble": 75,
               "clipped": 25, "noise_white": 50, "noise_pink": 50, "noise_brown": 50, "hum": 50,
               "room_tone": 40, "quiet": 20}
DEFAULT_SIZES: Dict[str, Dict[str, int]] = {"train": _TRAIN_SIZES, "val": _EVAL_SIZES, "test": _EVAL_SIZES}
"""Clips per kind at ``scale=1``: train 3480 spoken words, 1600 derived unknown, 300 babble of words,
1100 silence (300 of them tonal); validation and test 960 spoken words, 400 derived unknown, 260 silence
each (no tonal, no babble of words: the streams the detectors are calibrated and benchmarked on are
unchanged by them)."""
SYNTHETIC_KEYWORD_CLIPS_PER_WORD = 40
# Kinds made from synthesized speech; every other kind is derived from the split's keyword clips.
SPEECH_MADE_KINDS = ("tts_word", "tts_hard", "babble_words")
SILENCE_KINDS = ("noise_white", "noise_pink", "noise_brown", "hum", "room_tone", "quiet", "tonal")
BABBLE_TALKERS = (3, 6)  # how many clips a babble negative overlaps, drawn uniformly (both kinds of babble)
OPT_IN_KINDS = ("tonal", "babble_words")
"""Kinds made for training only and joined to it when a recipe asks (``python -m train.kws
--tonal-negatives``, ``--babble-words-negatives``); the recipes delivered without them leave them out,
and so read the same data. (Joining one changes which share of the other kinds a recipe draws:
:func:`train.kws.open_set.share_of` draws every kind from one generator, in the kinds' order.)"""


def with_opt_in_kinds(generated: "GeneratedClips", joined: Iterable[str] = ()) -> "GeneratedClips":
    """``generated`` without the :data:`OPT_IN_KINDS` a recipe did not ask for (``joined``: those it did)."""
    joined = set(joined)
    return generated.without_kinds([kind for kind in OPT_IN_KINDS if kind not in joined])


def sizes_for(split: str, scale: float) -> Dict[str, int]:
    """Clips per kind for ``split`` at ``scale`` (at least one of each kind)."""
    _check_split(split)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    return {kind: max(1, int(round(count * scale))) for kind, count in DEFAULT_SIZES[split].items()}


# -- synthesis ----------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """One word to synthesize, with every random choice already made (so order and threads do not matter)."""

    text: str
    voice: Voice
    duration_stretch: float
    pitch_factor: float
    offset_fraction: float
    peak_dbfs: float
    floor_kind: str
    floor_dbfs: float
    noise_seed: int
    speed_factor: float = 1.0  # > 1: played faster after synthesis (the raised register only)

    @property
    def spoken_text(self) -> str:
        """What the engine is given: the word, or the voice's respelling of it."""
        return self.voice.spelling(self.text)

    def settings(self) -> dict:
        settings = {"word": self.text, "voice": self.voice.name, "speaker": self.voice.speaker,
                    "duration_stretch": self.duration_stretch, "pitch_factor": self.pitch_factor,
                    "pitch_method": "engine" if self.voice.native_pitch else "resample",
                    "offset_fraction": self.offset_fraction, "peak_dbfs": self.peak_dbfs,
                    "floor_kind": self.floor_kind, "floor_dbfs": self.floor_dbfs}
        if self.spoken_text != self.text:
            settings["spelling"] = self.spoken_text
        return settings if self.speed_factor == 1.0 else {**settings, "speed_factor": self.speed_factor}

    def source(self) -> str:
        speed = "" if self.speed_factor == 1.0 else f"|speed={self.speed_factor:.3f}"
        said = "" if self.spoken_text == self.text else f"|said={self.spoken_text}"
        return (f"{self.text}|{self.voice.name}{said}|stretch={self.duration_stretch:.3f}|"
                f"pitch={self.pitch_factor:.3f}{speed}")


def draw_utterances(words: Sequence[str], voices: Sequence[Voice], rng: np.random.Generator, *,
                    register: str = "natural") -> List[Utterance]:
    """One :class:`Utterance` per word: a speaker drawn evenly, then one of its voices, then rate, pitch,
    offset, level and noise floor; in the ``"raised"`` register (:data:`REGISTERS`) a higher pitch and a
    speed-up as well."""
    _check_register(register)
    raised = register == "raised"
    speakers = sorted({voice.speaker for voice in voices})
    utterances = []
    for word in words:
        speaker = speakers[rng.integers(len(speakers))]
        speaker_voices = [voice for voice in voices if voice.speaker == speaker]
        voice = speaker_voices[rng.integers(len(speaker_voices))]
        pitch_range = ((RAISED_PITCH_FACTOR_RANGE if raised else NATIVE_PITCH_FACTOR_RANGE) if voice.native_pitch
                       else RESAMPLED_PITCH_FACTOR_RANGE)
        peak_dbfs = round(float(rng.uniform(*PEAK_DBFS_RANGE)), 2)
        floor_dbfs = min(round(float(rng.uniform(*NOISE_FLOOR_DBFS_RANGE)), 2), peak_dbfs - NOISE_FLOOR_BELOW_PEAK_DB)
        utterances.append(Utterance(
            text=word, voice=voice,
            duration_stretch=round(float(rng.uniform(*DURATION_STRETCH_RANGE)), 3),
            pitch_factor=round(float(rng.uniform(*pitch_range)), 3),
            offset_fraction=round(float(rng.random()), 4), peak_dbfs=peak_dbfs,
            floor_kind=acoustics.NOISE_KINDS[rng.integers(len(acoustics.NOISE_KINDS))],
            floor_dbfs=floor_dbfs, noise_seed=int(rng.integers(2**31)),
            # drawn last, so the natural register's draws are those of before
            speed_factor=round(float(rng.uniform(*RAISED_SPEED_FACTOR_RANGE)), 3) if raised else 1.0))
    return utterances


def synthesize(utterances: Sequence[Utterance], *, progress: bool = False,
               num_workers: Optional[int] = None) -> List[Optional[np.ndarray]]:
    """Speak each utterance and bring it to 16 kHz, trimmed to its spoken part.

    flite and espeak-ng run once per word; festival once per batch of up to 64
    words of one voice; up to ``num_workers`` (default ``os.cpu_count()``)
    programs run at once.

    Returns
    -------
    list of float32[samples] (16 kHz, trimmed; not yet levelled or placed), ``None`` where the engine gave silence
    """
    engines = {utterance.voice.engine for utterance in utterances}
    if engines - set(ENGINES):
        raise ValueError(f"unknown speech engine(s) {', '.join(sorted(engines - set(ENGINES)))}; "
                         f"choose from {', '.join(ENGINES)}")
    _require_programs(sorted(engines))
    results: List[Optional[np.ndarray]] = [None] * len(utterances)
    with tempfile.TemporaryDirectory(prefix="kws_tts_") as folder:
        one_per_word = {"flite": _flite_job, "espeak-ng": _espeak_job}
        jobs = [([row], one_per_word[utterance.voice.engine](utterance, Path(folder) / f"{row}.wav"))
                for row, utterance in enumerate(utterances) if utterance.voice.engine in one_per_word]
        festival_rows: Dict[str, List[int]] = {}
        for row, utterance in enumerate(utterances):
            if utterance.voice.engine == "festival":
                festival_rows.setdefault(utterance.voice.name, []).append(row)
        for rows in festival_rows.values():
            for start in range(0, len(rows), 64):
                batch = rows[start:start + 64]
                jobs.append((batch, _festival_job([utterances[row] for row in batch], batch, Path(folder))))
        bar = _progress_bar(len(utterances), "synthesizing words", progress)
        with ThreadPoolExecutor(max_workers=num_workers or os.cpu_count() or 1) as pool:
            for rows, _ in zip((rows for rows, _ in jobs), pool.map(lambda job: job[1](), jobs)):
                for row in rows:
                    results[row] = _to_16k_trimmed(Path(folder) / f"{row}.wav", utterances[row])
                bar.update(len(rows))
        bar.close()
    return results


def _flite_job(utterance: Utterance, path: Path):
    voice = utterance.voice
    command = ["flite", "-voice", voice.engine_voice, "--setf", f"duration_stretch={utterance.duration_stretch}"]
    if voice.native_pitch:
        command += ["--setf", f"int_f0_target_mean={voice.base_f0_hz * utterance.pitch_factor:.1f}"]
    command += ["-t", utterance.spoken_text, "-o", str(path)]
    return lambda: _run(command, "flite")


def _espeak_job(utterance: Utterance, path: Path):
    words_per_minute = int(round(ESPEAK_DEFAULT_WORDS_PER_MINUTE / utterance.duration_stretch))
    pitch = min(99, max(0, int(round(ESPEAK_DEFAULT_PITCH * utterance.pitch_factor))))
    command = ["espeak-ng", "-v", utterance.voice.engine_voice, "-s", str(words_per_minute), "-p", str(pitch),
               "-w", str(path), "--", utterance.spoken_text]
    return lambda: _run(command, "espeak-ng")


def _festival_job(utterances: Sequence[Utterance], rows: Sequence[int], folder: Path):
    voice = utterances[0].voice
    lines = [f"(voice_{voice.engine_voice})"]
    if voice.is_hts:
        lines.append("(set! base_hts_engine_params hts_engine_params)")
    for row, utterance in zip(rows, utterances):
        if voice.is_hts:  # HTS ignores Duration_Stretch; its engine's speed rate is the inverse of a stretch
            lines.append("(set! hts_engine_params (append base_hts_engine_params "
                         f"(list (list \"-r\" {1.0 / utterance.duration_stretch:.4f}))))")
        else:  # a diphone voice: the duration stretch, and the intonation model's target mean where it moves
            lines.append(f"(Parameter.set 'Duration_Stretch {utterance.duration_stretch})")
            if voice.native_pitch:
                lines.append(f"(set! int_lr_params '((target_f0_mean "
                             f"{voice.base_f0_hz * utterance.pitch_factor:.1f}) "
                             "(target_f0_std 14) (model_f0_mean 170) (model_f0_std 34)))")
        text = utterance.spoken_text.replace("\\", "").replace('"', "")
        lines.append(f"(utt.save.wave (utt.synth (Utterance Text \"{text}\")) \"{folder / f'{row}.wav'}\" 'riff)")
    script = folder / f"festival_{rows[0]}.scm"
    script.write_text("\n".join(lines) + "\n")
    return lambda: _run(["festival", "--batch", str(script)], "festival",
                        install_line=ACCENTED_INSTALL_LINE if voice.spellings else None)


def _run(command: Sequence[str], program: str, *, install_line: Optional[str] = None) -> None:
    try:
        completed = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise RuntimeError(_missing_message([program])) from None
    if completed.returncode != 0 or "SIOD ERROR" in completed.stderr or "SIOD ERROR" in completed.stdout:
        raise RuntimeError(f"{program} failed ({' '.join(command[:4])} ...): "
                           f"{(completed.stderr or completed.stdout).strip()[-500:]}\n"
                           f"Are its voices installed?  {install_line or _install_line(program)}")


def _to_16k_trimmed(path: Path, utterance: Utterance) -> Optional[np.ndarray]:
    from native.resample import ratio_for, resample_poly
    from pi_runtime.wav import read_wav

    samples, rate_hz = read_wav(path)
    speed_factor = utterance.speed_factor * (1.0 if utterance.voice.native_pitch else utterance.pitch_factor)
    if speed_factor != 1.0:
        # Played faster (by the pitch factor where the engine cannot move its pitch): the audio is read as
        # if recorded at a higher rate (multiples of 80 Hz keep the resampling ratio small).
        rate_hz = int(round(rate_hz * speed_factor / 80.0)) * 80
    audio = resample_poly(samples, *ratio_for(rate_hz, SAMPLE_RATE_HZ)) if rate_hz != SAMPLE_RATE_HZ \
        else samples.astype(np.float32) / np.float32(32768.0)
    start, end = active_span(audio, relative_db=40.0)
    return audio[start:end] if end > start else None


def place_word(word: np.ndarray, utterance: Utterance) -> Optional[np.ndarray]:
    """A trimmed word levelled to its peak, at its offset in a one-second clip over its noise floor.

    Returns ``None`` when the word is longer than one clip (such words are dropped, not cut).
    """
    if word is None or len(word) > CLIP_LENGTH_SAMPLES:
        return None
    clip = np.zeros(CLIP_LENGTH_SAMPLES, np.float32)
    offset = int(utterance.offset_fraction * (CLIP_LENGTH_SAMPLES - len(word)))
    clip[offset:offset + len(word)] = acoustics.scale_to_peak_dbfs(word, utterance.peak_dbfs)
    floor = acoustics.coloured_noise(utterance.floor_kind, CLIP_LENGTH_SAMPLES,
                                     np.random.default_rng(utterance.noise_seed))
    return clip + floor * np.float32(10.0 ** (utterance.floor_dbfs / 20.0))


def active_span(audio: np.ndarray, *, relative_db: float = 30.0,
                sample_rate_hz: int = SAMPLE_RATE_HZ, margin_ms: float = 20.0) -> Tuple[int, int]:
    """``(start, end)`` samples of the spoken part of ``audio`` (float32 or int16).

    Over 10 ms frames, a frame is active when its power is within
    ``relative_db`` of the loudest frame and at least 6 dB over the quietest
    tenth of the frames (the background), the loudest frame always; the span
    runs from the first to the last active frame, widened by ``margin_ms`` on
    each side. ``(0, 0)`` for silence.
    """
    samples = audio.astype(np.float64) / (32768.0 if audio.dtype == np.int16 else 1.0)
    frame = int(sample_rate_hz * 0.010)
    num_frames = len(samples) // frame
    if num_frames == 0:
        return (0, 0) if not np.any(samples) else (0, len(samples))
    power = np.mean(samples[:num_frames * frame].reshape(num_frames, frame) ** 2, axis=1)
    if power.max() <= 0:
        return 0, 0
    threshold = min(power.max(), max(power.max() * 10.0 ** (-relative_db / 10.0), 4.0 * np.percentile(power, 10)))
    active = np.flatnonzero(power >= threshold)
    margin = int(sample_rate_hz * margin_ms / 1000.0)
    return max(0, active[0] * frame - margin), min(len(samples), (active[-1] + 1) * frame + margin)


# -- derived negatives --------------------------------------------------------


def derive_negatives(clips: np.ndarray, names: Sequence[str], label_ids: np.ndarray,
                     sizes: Dict[str, int], rng: np.random.Generator) -> Tuple[GeneratedClips, List[dict]]:
    """Near-speech (``_unknown_``) made from a split's keyword clips, and non-speech (``_silence_``).

    Parameters
    ----------
    clips : int16[n, 16000]
    names : per clip, e.g. ``"go/0a2b_nohash_0.wav"``
    label_ids : int[n], used to splice two different words
    sizes : clips per kind (kinds absent or zero are not made)

    Returns
    -------
    The clips, and per clip a settings dict for the manifest.
    """
    clips = np.asarray(clips)
    if clips.ndim != 2 or clips.shape[1] != CLIP_LENGTH_SAMPLES or clips.dtype != np.int16:
        raise ValueError(f"split clips must be int16[n, {CLIP_LENGTH_SAMPLES}], got {clips.dtype}{list(clips.shape)}")
    if len(clips) < 6:
        raise ValueError(f"derived negatives need at least 6 split clips (babble overlaps up to 6), got {len(clips)}")
    if len(np.unique(label_ids)) < 2 and sizes.get("splice"):
        raise ValueError("splices need clips of at least two different words")
    makers = {"reversed": _reversed, "half": _half, "splice": _splice, "babble": _babble, "clipped": _clipped,
              "noise_white": _noise, "noise_pink": _noise, "noise_brown": _noise, "hum": _hum,
              "room_tone": _room_tone, "quiet": _quiet, "tonal": _tonal}
    unknown = sorted(kind for kind, count in sizes.items() if count and kind not in makers)
    if unknown:  # spoken words and their babble are made from speech, not from the split's clips
        raise ValueError(f"kinds not derived from a split's clips: {', '.join(unknown)}")
    audio, classes, kinds, sources, settings = [], [], [], [], []
    for kind, maker in makers.items():
        for _ in range(sizes.get(kind, 0)):
            clip, source, clip_settings = maker(kind, clips, names, label_ids, rng)
            audio.append(_to_int16(clip) if clip.dtype != np.int16 else clip)
            classes.append(SILENCE_LABEL if kind in SILENCE_KINDS else UNKNOWN_LABEL)
            kinds.append(kind)
            sources.append(source)
            settings.append(clip_settings)
    stacked = np.stack(audio) if audio else np.zeros((0, CLIP_LENGTH_SAMPLES), np.int16)
    return GeneratedClips(stacked, tuple(classes), tuple(kinds), tuple(sources)), settings


def _float(clip: np.ndarray) -> np.ndarray:
    return clip.astype(np.float32) / np.float32(32768.0)


def _reversed(kind, clips, names, label_ids, rng):
    row = int(rng.integers(len(clips)))
    return _float(clips[row])[::-1].copy(), names[row], {}


def _background_fill(clip: np.ndarray, start: int, end: int, length: int, rng) -> np.ndarray:
    """White noise at the level of the clip outside its spoken part (zeros if it has none)."""
    outside = np.concatenate([clip[:start], clip[end:]])
    level = float(np.sqrt(np.mean(outside.astype(np.float64) ** 2))) if outside.size else 0.0
    return (rng.standard_normal(length) * level).astype(np.float32)


def _ramp_mask(length: int, keep_from: int, keep_to: int, ramp: int) -> np.ndarray:
    """1 over [keep_from, keep_to), 0 elsewhere, with linear ramps of ``ramp`` samples inside the kept part."""
    mask = np.zeros(length, np.float32)
    mask[keep_from:keep_to] = 1.0
    ramp = max(1, min(ramp, (keep_to - keep_from) // 2))
    if keep_from > 0:
        mask[keep_from:keep_from + ramp] = np.linspace(0.0, 1.0, ramp, endpoint=False)
    if keep_to < length:
        mask[keep_to - ramp:keep_to] = np.linspace(1.0, 0.0, ramp, endpoint=False)
    return mask


def _half(kind, clips, names, label_ids, rng):
    row = int(rng.integers(len(clips)))
    clip = _float(clips[row])
    start, end = active_span(clip)
    middle = (start + end) // 2
    first = bool(rng.integers(2))
    removed_from, removed_to = (middle, end) if first else (start, middle)
    ramp = int(0.005 * SAMPLE_RATE_HZ)
    kept = 1.0 - _ramp_mask(len(clip), removed_from, removed_to, ramp)  # the removed half fades to the background
    fill = _background_fill(clip, start, end, len(clip), rng)
    out = clip * kept + fill * (1.0 - kept)
    return out, names[row], {"half": "first" if first else "last", "span": [int(start), int(end)]}


def _splice(kind, clips, names, label_ids, rng):
    first_row = int(rng.integers(len(clips)))
    others = np.flatnonzero(label_ids != label_ids[first_row])
    second_row = int(others[rng.integers(len(others))])
    first, second = _float(clips[first_row]), _float(clips[second_row])
    first_start, first_end = active_span(first)
    second_start, second_end = active_span(second)
    cut = (first_start + first_end) // 2
    ramp = int(0.005 * SAMPLE_RATE_HZ)
    keep = _ramp_mask(len(first), 0, cut, ramp)
    out = first * keep + _background_fill(first, first_start, first_end, len(first), rng) * (1.0 - keep)
    tail = second[(second_start + second_end) // 2:second_end][:len(first) - cut]
    first_level, second_level = (acoustics.active_rms_dbfs(first[first_start:first_end]),
                                 acoustics.active_rms_dbfs(second[second_start:second_end]))
    if tail.size and np.isfinite(first_level) and np.isfinite(second_level):
        tail = tail * np.float32(10.0 ** ((first_level - second_level) / 20.0))
        tail = tail * np.minimum(1.0, np.arange(1, tail.size + 1) / ramp).astype(np.float32)  # fade in
        out[cut:cut + tail.size] += tail
    return out, f"{names[first_row]}+{names[second_row]}", {"cut": int(cut)}


def _babble_talkers(rng: np.random.Generator) -> int:
    """How many clips a babble overlaps, drawn from :data:`BABBLE_TALKERS`."""
    return int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))


def _babble(kind, clips, names, label_ids, rng):
    talkers = _babble_talkers(rng)
    rows, parts = acoustics.babble_talkers(clips, talkers=talkers, rng=rng)
    # Every talker says a keyword of the split: the manifest says which, and how far the loudest stands
    # over the rest (one that stands out is a keyword in babble more than babble).
    energy = np.sum(parts ** 2, axis=1)
    leader = names[rows[int(np.argmax(energy))]] if energy.max() > 0 else None  # none when every talker is silent
    return acoustics.babble_mix(clips, rows, parts), f"babble of {talkers}", {
        "talkers": talkers, "clips": [names[row] for row in rows], "leader": leader,
        "leader_over_rest_db": _finite_or_none(acoustics.leader_over_rest_db(parts))}


def _finite_or_none(value: float, digits: int = 2):
    """``value`` rounded for a JSON manifest, ``None`` when it is not finite."""
    return round(value, digits) if math.isfinite(value) else None


def babble_of_words(words: GeneratedClips, count: int,
                    rng: np.random.Generator) -> Tuple[GeneratedClips, List[dict]]:
    """``count`` clips of kind ``babble_words`` (class ``_unknown_``): each 3 to 6 of ``words`` (spoken
    non-keyword words, one-second clips; as many as there are, if fewer) overlapped by
    :func:`train.kws.acoustics.babble_talkers`, with the words and the loudest talker's lead over the rest
    (dB) as its settings."""
    if count and not len(words):
        raise ValueError("babble of words needs spoken words to overlap, got none")
    audio, sources, settings = [], [], []
    for _ in range(count):
        talkers = min(_babble_talkers(rng), len(words))  # fewer where a tiny scale made fewer words
        rows, parts = acoustics.babble_talkers(words.audio, talkers=talkers, rng=rng)
        audio.append(_to_int16(acoustics.babble_mix(words.audio, rows, parts)))
        sources.append(f"babble of {talkers} words")
        settings.append({"talkers": talkers, "words": [words.sources[row] for row in rows],
                         "leader_over_rest_db": _finite_or_none(acoustics.leader_over_rest_db(parts))})
    stacked = np.stack(audio) if audio else np.zeros((0, CLIP_LENGTH_SAMPLES), np.int16)
    return GeneratedClips(stacked, (UNKNOWN_LABEL,) * count, ("babble_words",) * count, tuple(sources)), settings


def _clipped(kind, clips, names, label_ids, rng):
    source_kind = "reversed" if rng.integers(2) else "babble"
    audio, source, _ = (_reversed if source_kind == "reversed" else _babble)(kind, clips, names, label_ids, rng)
    over_db = float(rng.uniform(6.0, 20.0))
    driven = acoustics.scale_to_peak_dbfs(audio, 0.0) * np.float32(10.0 ** (over_db / 20.0))
    return np.clip(driven, -1.0, 1.0), f"clipped {source_kind} {source}", {"over_full_scale_db": round(over_db, 2)}


def _noise(kind, clips, names, label_ids, rng):
    level_dbfs = float(rng.uniform(-75.0, -30.0))
    noise = acoustics.coloured_noise(kind.split("_")[1], CLIP_LENGTH_SAMPLES, rng) * np.float32(10 ** (level_dbfs / 20))
    return noise, kind, {"rms_dbfs": round(level_dbfs, 2)}


def _hum(kind, clips, names, label_ids, rng):
    mains_hz = int(rng.choice([50, 60]))
    level_dbfs = float(rng.uniform(-70.0, -35.0))
    floor_dbfs = level_dbfs - float(rng.uniform(20.0, 30.0))
    audio = (acoustics.hum(CLIP_LENGTH_SAMPLES, sample_rate_hz=SAMPLE_RATE_HZ, mains_hz=mains_hz, rng=rng)
             * np.float32(10 ** (level_dbfs / 20))
             + acoustics.coloured_noise("white", CLIP_LENGTH_SAMPLES, rng) * np.float32(10 ** (floor_dbfs / 20)))
    return audio, f"hum {mains_hz} Hz", {"mains_hz": mains_hz, "rms_dbfs": round(level_dbfs, 2)}


def _room_tone(kind, clips, names, label_ids, rng):
    colour = "pink" if rng.integers(2) else "brown"
    level_dbfs = float(rng.uniform(-85.0, -60.0))
    audio = acoustics.coloured_noise(colour, CLIP_LENGTH_SAMPLES, rng) * np.float32(10 ** (level_dbfs / 20))
    return audio, f"room tone ({colour})", {"colour": colour, "rms_dbfs": round(level_dbfs, 2)}


def _quiet(kind, clips, names, label_ids, rng):
    dither_lsb = int(rng.integers(0, 3))
    audio = rng.integers(-dither_lsb, dither_lsb + 1, size=CLIP_LENGTH_SAMPLES).astype(np.int16)
    return audio, f"quiet (+-{dither_lsb} LSB)", {"dither_lsb": dither_lsb}


def _tonal(kind, clips, names, label_ids, rng):
    """One to four partials (harmonic or not) on a base of 80-4000 Hz, steady, gliding by up to an
    octave or warbling, held, pulsed or struck; a peak of -35 to -3 dBFS over a faint noise floor."""
    t = np.arange(CLIP_LENGTH_SAMPLES) / SAMPLE_RATE_HZ
    base_hz = float(np.exp(rng.uniform(np.log(80.0), np.log(4000.0))))
    motion = ("steady", "glide", "warble")[int(rng.integers(3))]
    if motion == "glide":
        track = base_hz * float(np.exp(rng.uniform(-np.log(2.0), np.log(2.0)))) ** t
    elif motion == "warble":
        track = base_hz * (1 + rng.uniform(0.01, 0.1) * np.sin(2 * np.pi * rng.uniform(2.0, 12.0) * t))
    else:
        track = np.full(t.size, base_hz)
    track = np.minimum(track, 7000.0)  # the fundamental stays under the Nyquist frequency
    partials = int(rng.integers(1, 5))
    ratios = [1.0] + [float(rng.integers(2, 6)) if rng.integers(2) else float(rng.uniform(1.1, 3.0))
                      for _ in range(partials - 1)]
    phase = 2 * np.pi * np.cumsum(track) / SAMPLE_RATE_HZ
    audio = sum((np.sin(ratio * phase + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.2, 1.0) / ratio
                 for ratio in ratios if ratio * track.max() < SAMPLE_RATE_HZ / 2), np.zeros(t.size))
    shape = ("held", "pulsed", "struck")[int(rng.integers(3))]
    if shape == "pulsed":
        on_s, off_s = rng.uniform(0.05, 0.5, size=2)
        audio = audio * (((t + rng.uniform(0, on_s + off_s)) % (on_s + off_s)) < on_s)
    elif shape == "struck":
        onset = int(rng.uniform(0.0, 0.5) * SAMPLE_RATE_HZ)
        decay = np.exp(-(t - t[onset]) / rng.uniform(0.1, 1.0))
        audio = audio * np.where(np.arange(t.size) >= onset, decay, 0.0)
    peak_dbfs = float(rng.uniform(-35.0, -3.0))
    floor_dbfs = peak_dbfs - float(rng.uniform(30.0, 45.0))
    audio = (acoustics.scale_to_peak_dbfs(np.asarray(audio, np.float32), peak_dbfs)
             + acoustics.coloured_noise("white", CLIP_LENGTH_SAMPLES, rng) * np.float32(10 ** (floor_dbfs / 20)))
    return audio, f"tonal {base_hz:.0f} Hz, {partials} partials, {motion}, {shape}", {
        "base_hz": round(base_hz, 1), "partials": partials, "motion": motion, "shape": shape,
        "peak_dbfs": round(peak_dbfs, 2)}


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(audio.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


# -- building, with the cache -------------------------------------------------


def build_negatives(split: str, *, split_clips, data_dir: Optional[Path] = None, seed: int = 0,
                    scale: float = 1.0, sizes: Optional[Dict[str, int]] = None,
                    progress: bool = False) -> GeneratedClips:
    """The negatives of ``split``: synthetic non-keyword speech, derived near-speech and non-speech.

    Parameters
    ----------
    split : "train", "val" or "test"
        Chooses the voices (:data:`VOICES`) and words (:func:`word_split`).
    split_clips : train.kws.data.ClipSet
        That split's keyword clips (int16[n, 16000]), from which the derived negatives are made.
    data_dir : folder of the cache ``kws_generated/<split>/`` (default :func:`train.paths.data_dir`)
    seed : int
    scale : float
        Multiplies every count of :data:`DEFAULT_SIZES` (at least one clip per kind).
    sizes : dict, optional
        Counts of their own for some kinds of ``split`` (the others as ``scale`` gives them).
    progress : bool
        Show progress bars (tqdm) on stderr.

    Returns
    -------
    GeneratedClips
        Spoken words first (``tts_word``, ``tts_hard``), then derived ``_unknown_`` kinds, then ``_silence_`` kinds,
        then (training) the babble of spoken words (``babble_words``, ``_unknown_``).

    Raises
    ------
    RuntimeError
        Naming flite / festival / the word list and the apt-get line, when one is missing.
    """
    _check_split(split)
    wanted = dict(sizes or {})
    sizes = sizes_for(split, scale)
    bad = {kind: count for kind, count in wanted.items() if kind not in sizes or not _is_count(count)}
    if bad:
        raise ValueError(f"sizes must give positive counts of {split}'s kinds ({', '.join(sizes)}), got {bad}")
    sizes.update({kind: int(count) for kind, count in wanted.items()})
    names = clip_names(split_clips)
    request = _request("negatives", split, seed=seed, voices=VOICES[split], extra={
        "scale": scale, "sizes": sizes, "input_clips_sha256": _clips_sha256(split_clips.audio, names,
                                                                            split_clips.label_ids)})

    def generate():
        spoken, spoken_settings, details = _spoken_words(split, sizes, seed=seed, progress=progress)
        derived, derived_settings = split_derived_negatives(split, split_clips, sizes=sizes, seed=seed)
        parts, settings = [spoken, derived], spoken_settings + derived_settings
        if sizes.get("babble_words"):  # after the others, from its own draws: they stay as they were
            babble, babble_settings = babble_of_words(spoken.select("tts_word"), sizes["babble_words"],
                                                      np.random.default_rng([seed, SPLITS.index(split), 6]))
            parts.append(babble)
            settings += babble_settings
        return concatenate(parts), settings, details

    return _cached(split, "negatives", request, generate, data_dir, progress)


def clip_names(split_clips) -> List[str]:
    """``word/file.wav`` of each of a split's clips (:func:`train.kws.evaluate.clip_name`), as sources name them."""
    return [clip_name(Path(path)) for path in split_clips.paths]


def split_derived_negatives(split: str, split_clips, *, sizes: Optional[Dict[str, int]] = None,
                            seed: int = 0) -> Tuple[GeneratedClips, List[dict]]:
    """The derived part of :func:`build_negatives` (``sizes``: its counts, default the split's), the same
    clips drawn the same way, with each clip's settings as its manifest holds them; made afresh in seconds,
    no speech engine and no cache (what a manifest written before a setting was recorded lacks)."""
    _check_split(split)
    sizes = sizes_for(split, 1.0) if sizes is None else sizes
    names = clip_names(split_clips)
    return derive_negatives(split_clips.audio, names, np.asarray(split_clips.label_ids),
                            {kind: count for kind, count in sizes.items() if kind not in SPEECH_MADE_KINDS},
                            np.random.default_rng([seed, SPLITS.index(split), 2]))


def synthetic_keywords(split: str, *, keywords: Sequence[str] = KEYWORDS, data_dir: Optional[Path] = None,
                       seed: int = 0, progress: bool = False, clips_per_word: int = SYNTHETIC_KEYWORD_CLIPS_PER_WORD,
                       register: str = "natural", accented: bool = False) -> GeneratedClips:
    """The keywords spoken by ``split``'s synthetic voices: ``clips_per_word`` clips per word, each with
    its own voice, rate, pitch, level and offset; class = the keyword, kind ``tts_keyword``.

    ``register="raised"`` speaks them higher (:data:`RAISED_PITCH_FACTOR_RANGE`,
    :data:`RAISED_SPEED_FACTOR_RANGE`), a set of clips of its own, cached beside the natural one.
    ``accented=True`` has the split's :data:`ACCENTED_VOICES` speak them instead (cached as
    ``keywords_accented``; the natural register only).
    All eight keywords are generated and cached; ``keywords`` selects among them (so the clips of a word
    do not depend on which others are asked for).
    """
    _check_split(split)
    _check_register(register)
    unknown = [word for word in keywords if word not in KEYWORDS]
    if unknown:
        raise ValueError(f"unknown keyword(s) {', '.join(unknown)}; choose from {', '.join(KEYWORDS)}")
    if not _is_count(clips_per_word):
        raise ValueError(f"clips_per_word must be a positive integer, got {clips_per_word!r}")
    raised = register == "raised"
    if accented and raised:
        raise ValueError("the accented voices speak in the natural register only")
    voices = ACCENTED_VOICES[split] if accented else VOICES[split]
    if not voices:
        raise ValueError(f"the {split} split has no {'accented ' if accented else ''}voices")
    extra = {"clips_per_word": int(clips_per_word)}
    if raised:  # the natural register's request is unchanged, so its caches stay valid
        extra.update(RAISED_REQUEST)
    product = "keywords_raised" if raised else "keywords_accented" if accented else "keywords"
    request = _request(product, split, seed=seed, voices=voices, extra=extra)

    def generate():
        # (stream 6 is also the babble of words' in the negatives: another product, unrelated draws)
        rng = np.random.default_rng([seed, SPLITS.index(split), 4 if raised else 6 if accented else 3])
        return speak_keywords(voices, int(clips_per_word), rng, kind="tts_keyword", register=register,
                              progress=progress)

    everything = _cached(split, product, request, generate, data_dir, progress)
    return everything.select_classes(keywords)


RAISED_WORD_SIZES = {"tts_word": 1000, "tts_hard": 160}
"""Non-keyword words spoken in the raised register (:func:`raised_words`), training only: keywords in a
higher voice and no other words in it would teach a model that a higher voice means a keyword."""


def raised_words(split: str, *, data_dir: Optional[Path] = None, seed: int = 0, progress: bool = False,
                 sizes: Optional[Dict[str, int]] = None) -> GeneratedClips:
    """Words of ``split`` (:func:`split_words`, drawn anew) spoken by its voices in the raised register:
    class ``_unknown_``, kinds ``tts_word_raised`` and ``tts_hard_raised``; cached as ``words_raised``."""
    _check_split(split)
    sizes = dict(RAISED_WORD_SIZES if sizes is None else sizes)
    if sorted(sizes) != sorted(RAISED_WORD_SIZES) or not all(map(_is_count, sizes.values())):
        raise ValueError(f"sizes must give a positive count for each of {', '.join(RAISED_WORD_SIZES)}, "
                         f"got {sizes!r}")
    request = _request("words_raised", split, seed=seed, voices=VOICES[split],
                       extra={"sizes": sizes, **RAISED_REQUEST})

    def generate():
        # Another draw of the split's words than the natural register's (seed + 1), the same pool.
        plain = split_words(split, _with_spares(sizes["tts_word"]), seed=seed + 1)
        hard = split_words(split, _with_spares(sizes["tts_hard"]), seed=seed + 1, hard=True)
        clips, settings, details = speak_words(plain, hard, VOICES[split], sizes["tts_word"], sizes["tts_hard"],
                                               np.random.default_rng([seed, SPLITS.index(split), 5]),
                                               register="raised", progress=progress)
        kinds = tuple(f"{kind}_raised" for kind in clips.kinds)
        return GeneratedClips(clips.audio, clips.classes, kinds, clips.sources), settings, details

    return _cached(split, "words_raised", request, generate, data_dir, progress)


def split_words(split: str, count: int, *, seed: int = 0, hard: bool = False) -> List[str]:
    """``count`` words of ``split`` drawn without repeats (deterministic in ``seed``), homophones removed.

    Plain words come from :func:`dictionary_words`; hard ones from :data:`HARD_NEGATIVES`, cycled
    when ``count`` exceeds them (each then spoken several times, by different voices and settings).
    """
    _check_split(split)
    rng = np.random.default_rng([seed, SPLITS.index(split), 1 if hard else 0])
    candidates = hard_negative_words() if hard else dictionary_words()
    pool = [word for word in candidates if word_split(word, hard=hard) == split]
    if not pool:
        raise ValueError(f"no {'hard ' if hard else ''}words fall in split {split!r}")
    if hard:
        homophones = homophone_of(pool)
        pool = [word for word in pool if word not in homophones]
        order = [pool[i] for i in rng.permutation(len(pool))]
        return [order[i % len(order)] for i in range(count)]
    order = [pool[i] for i in rng.permutation(len(pool))]
    chosen: List[str] = []
    position = 0
    while len(chosen) < count and position < len(order):
        batch = order[position:position + int((count - len(chosen)) * 1.05) + 10]
        position += len(batch)
        homophones = homophone_of(batch)
        chosen += [word for word in batch if word not in homophones][:count - len(chosen)]
    if len(chosen) < count:
        raise ValueError(f"split {split!r} has only {len(chosen)} usable words, {count} requested")
    return chosen


def _with_spares(count: int) -> int:
    """Words to synthesize for ``count`` clips: 1 to 4 % come out longer than a clip and are dropped."""
    return count + max(2, -(-count // 10))


def _spoken_words(split: str, sizes: Dict[str, int], *, seed: int, progress: bool):
    plain = split_words(split, _with_spares(sizes["tts_word"]), seed=seed)
    hard = split_words(split, _with_spares(sizes["tts_hard"]), seed=seed, hard=True)
    return speak_words(plain, hard, VOICES[split], sizes["tts_word"], sizes["tts_hard"],
                       np.random.default_rng([seed, SPLITS.index(split), 4]), progress=progress)


def speak_keywords(voices: Sequence[Voice], clips_per_word: int, rng: np.random.Generator, *, kind: str,
                   register: str = "natural", progress: bool = False):
    """The eight keywords spoken by ``voices`` in ``register``, ``clips_per_word`` clips a word (spares drawn
    for the words too long for a clip): ``(clips, settings, details)`` for :func:`_cached`, class = the
    keyword."""
    words = [word for word in KEYWORDS for _ in range(_with_spares(clips_per_word))]
    clips, settings, details = _speak(draw_utterances(words, voices, rng, register=register), words,
                                      {word: clips_per_word for word in KEYWORDS}, progress=progress)
    clips = GeneratedClips(clips.audio, tuple(s["word"] for s in settings), (kind,) * len(clips), clips.sources)
    return clips, settings, {**details, "words": list(KEYWORDS)}


def speak_words(plain: Sequence[str], hard: Sequence[str], voices: Sequence[Voice], plain_count: int,
                hard_count: int, rng: np.random.Generator, *, register: str = "natural", progress: bool = False):
    """The first ``plain_count`` of ``plain`` and ``hard_count`` of ``hard`` words that fit a clip, spoken by
    ``voices``: ``(clips, settings, details)`` for :func:`_cached`, class ``_unknown_``, kinds ``tts_word``
    and ``tts_hard``."""
    groups = ["tts_word"] * len(plain) + ["tts_hard"] * len(hard)
    utterances = draw_utterances(list(plain) + list(hard), voices, rng, register=register)
    clips, settings, details = _speak(utterances, groups, {"tts_word": plain_count, "tts_hard": hard_count},
                                      progress=progress)
    kinds = tuple(clip_settings["group"] for clip_settings in settings)
    clips = GeneratedClips(clips.audio, (UNKNOWN_LABEL,) * len(clips), kinds, clips.sources)
    details["words"] = sorted({s["word"] for s in settings if s["group"] == "tts_word"})
    details["hard_words"] = sorted({s["word"] for s in settings if s["group"] == "tts_hard"})
    return clips, settings, details


def _speak(utterances: Sequence[Utterance], groups: Sequence[str], wanted: Dict[str, int], *, progress: bool):
    """Synthesize, level and place; keep the first ``wanted[group]`` clips of each group that fit in a clip.

    Returns the clips (kind and class still to be set), their settings (with ``"row"`` and ``"group"``) and
    counts of words synthesized, dropped as longer than a clip, and left over as unused spares.
    """
    words = synthesize(utterances, progress=progress)
    audio, sources, settings = [], [], []
    kept = {group: 0 for group in wanted}
    dropped = 0
    for row, (word, utterance, group) in enumerate(zip(words, utterances, groups)):
        if kept[group] == wanted[group]:
            continue
        clip = place_word(word, utterance)
        if clip is None:
            dropped += 1
            continue
        kept[group] += 1
        audio.append(_to_int16(clip))
        sources.append(utterance.source())
        settings.append({"row": row, "group": group, "active_samples": int(len(word)), **utterance.settings()})
    stacked = np.stack(audio) if audio else np.zeros((0, CLIP_LENGTH_SAMPLES), np.int16)
    clips = GeneratedClips(stacked, (UNKNOWN_LABEL,) * len(audio), ("tts",) * len(audio), tuple(sources))
    details = {"synthesized": len(utterances), "dropped_longer_than_clip": dropped,
               "spares_unused": len(utterances) - dropped - len(audio)}
    return clips, settings, details


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")


def _check_register(register: str) -> None:
    if register not in REGISTERS:
        raise ValueError(f"unknown register {register!r}; choose from {', '.join(REGISTERS)}")


def _is_count(value) -> bool:
    """Whether ``value`` is a positive whole number (not a bool)."""
    return not isinstance(value, bool) and int(value) == value and value >= 1


def _install_line(program: str) -> str:
    return ESPEAK_INSTALL_LINE if program == "espeak-ng" else APT_INSTALL_LINE


def _missing_message(programs: Sequence[str]) -> str:
    lines = "\n  ".join(sorted({_install_line(program) for program in programs}))
    return (f"{', '.join(programs)} not found: the synthetic speech needs the Debian packages flite and "
            f"festival with two festival voices and the word list (espeak-ng only for the independent "
            f"check; the accented voices: {ACCENTED_INSTALL_LINE}); install them with:\n  {lines}")


def _require_programs(programs: Sequence[str]) -> None:
    missing = [program for program in programs if shutil.which(program) is None]
    if missing:
        raise RuntimeError(_missing_message(missing))


def engine_versions(voices: Sequence[Voice]) -> Dict[str, str]:
    """Versions of flite (always: its lexicon checks homophones) and of festival or espeak-ng when ``voices``
    use them."""
    programs = {"flite": ["flite", "--version"]}
    for engine in ("festival", "espeak-ng"):
        if any(voice.engine == engine for voice in voices):
            programs[engine] = [engine, "--version"]
    _require_programs(list(programs))
    return {name: " ".join(subprocess.run(command, capture_output=True, text=True).stdout.split())
            for name, command in programs.items()}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _clips_sha256(audio: np.ndarray, names: Sequence[str], label_ids) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(audio, dtype=np.int16).tobytes())
    digest.update(np.asarray(label_ids, dtype=np.int64).tobytes())
    digest.update("\n".join(names).encode("utf-8"))
    return digest.hexdigest()


def _request(product: str, split: str, *, seed: int, voices: Sequence[Voice], extra: dict) -> dict:
    """Everything the generated audio depends on: a cache is reused only for an equal request."""
    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not WORD_LIST_PATH.is_file():
        dictionary_words()  # raises the message naming the package
    request = {"product": product, "split": split, "seed": int(seed), "generator_version": GENERATOR_VERSION,
               "voices": [voice.request() for voice in voices], "engines": engine_versions(voices),
               "word_list_sha256": file_sha256(WORD_LIST_PATH), "settings": _settings(), **extra}
    return json.loads(json.dumps(request))  # as the manifest will hold it (tuples become lists)


def _settings() -> dict:
    """The word lists and ranges in this module: editing them invalidates the caches without a version bump."""
    return {"hard_negatives": HARD_NEGATIVES, "homophones": HOMOPHONES, "word_split_percent":
            {str(hard): list(bounds) for hard, bounds in _WORD_SPLIT_PERCENT.items()},
            "duration_stretch": DURATION_STRETCH_RANGE, "native_pitch_factor": NATIVE_PITCH_FACTOR_RANGE,
            "resampled_pitch_factor": RESAMPLED_PITCH_FACTOR_RANGE, "peak_dbfs": PEAK_DBFS_RANGE,
            "noise_floor_dbfs": NOISE_FLOOR_DBFS_RANGE, "noise_floor_below_peak_db": NOISE_FLOOR_BELOW_PEAK_DB}


def cache_paths(split: str, product: str, data_dir: Optional[Path] = None) -> Tuple[Path, Path]:
    """``(<product>.npz, <product>.manifest.json)`` under ``<data_dir>/kws_generated/<split>/``."""
    from train.paths import data_dir as default_data_dir

    folder = (Path(data_dir) if data_dir is not None else default_data_dir()) / CACHE_FOLDER / split
    return folder / f"{product}.npz", folder / f"{product}.manifest.json"


def read_manifest(split: str, product: str = "negatives", data_dir: Optional[Path] = None) -> dict:
    """The manifest of a cached product (``"negatives"`` or ``"keywords"``)."""
    manifest_path = cache_paths(split, product, data_dir)[1]
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no generated {product} for split {split!r}: {manifest_path} is missing")
    return json.loads(manifest_path.read_text())


def _audio_sha256(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.int16).tobytes()).hexdigest()


def _load_cache(npz_path: Path, manifest_path: Path, request: dict) -> Tuple[Optional[GeneratedClips], str]:
    """The cached clips when they answer ``request`` and their checksum holds; else ``None`` and why."""
    if not (npz_path.is_file() and manifest_path.is_file()):
        return None, "no cache yet"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        return None, f"unreadable manifest ({error})"
    if manifest.get("request") != request:
        changed = sorted(key for key in set(request) | set(manifest.get("request", {}))
                         if request.get(key) != manifest.get("request", {}).get(key))
        return None, f"the request changed ({', '.join(changed)})"
    with np.load(npz_path, allow_pickle=False) as stored:
        clips = GeneratedClips(audio=stored["audio"], classes=tuple(stored["classes"].tolist()),
                               kinds=tuple(stored["kinds"].tolist()), sources=tuple(stored["sources"].tolist()))
    if _audio_sha256(clips.audio) != manifest.get("audio_sha256"):
        return None, "the audio does not match its checksum"
    return clips, "reused"


def _cached(split: str, product: str, request: dict, generate, data_dir: Optional[Path],
            progress: bool) -> GeneratedClips:
    npz_path, manifest_path = cache_paths(split, product, data_dir)
    clips, why = _load_cache(npz_path, manifest_path, request)
    if clips is not None:
        return clips
    if progress:
        print(f"generating {split} {product} into {npz_path.parent} ({why})", file=sys.stderr)
    started = time.perf_counter()
    clips, settings, details = generate()
    seconds = time.perf_counter() - started
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "tinyml-pi-generated-audio", "request": request, "audio_sha256": _audio_sha256(clips.audio),
                "num_clips": len(clips), "counts": clips.counts(),
                "classes": {name: clips.classes.count(name) for name in sorted(set(clips.classes))},
                "speakers": sorted({voice["speaker"] for voice in request["voices"]}),
                "generation_seconds": round(seconds, 1), **details,
                "clips": [{"class": name, "kind": kind, "source": source, "settings": clip_settings}
                          for name, kind, source, clip_settings in zip(clips.classes, clips.kinds, clips.sources,
                                                                       settings)]}
    _write_atomically(npz_path, lambda file: np.savez_compressed(
        file, audio=clips.audio, classes=np.array(clips.classes, dtype=str), kinds=np.array(clips.kinds, dtype=str),
        sources=np.array(clips.sources, dtype=str)))
    _write_atomically(manifest_path, lambda file: file.write(json.dumps(manifest, indent=1).encode()))
    return clips


def _write_atomically(path: Path, write) -> None:
    """``write(file)`` into a temporary file of its own beside ``path``, then renamed over it: two runs
    started together both generate, and neither may move the other's half-written file (the generation
    is deterministic, so whichever renames last, the file is the same). The temporary file is created
    as any new file is (its mode from the umask; mkstemp's 0600 would hide a shared data folder's cache
    from its other users), under a name no other writer uses ("x": never an existing file)."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    file = open(temporary, "xb")  # outside the try: a file this call did not create is never removed
    try:
        with file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class _NoProgress:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, description: str, enabled: bool):
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="word", file=sys.stderr, mininterval=1.0)


# -- command line -------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.kws.negatives",
        description="Build (or check) the cached negatives and synthetic keywords of the KWS splits.")
    parser.add_argument("--split", default="all", choices=SPLITS + ("all",),
                        help="which split to build (default: all three)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data folder holding mini_speech_commands/ and the cache kws_generated/ "
                             "(default: $TINYML_DATA_DIR or ~/.cache/tinyml-pi)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed of every choice (default 0)")
    parser.add_argument("--scale", type=positive_float, default=1.0,
                        help="multiplies the number of negatives of every kind (default 1.0)")
    parser.add_argument("--no-keywords", action="store_true", help="skip the synthetic keywords")
    args = parser.parse_args(argv)
    from train.kws.data import load_split

    try:
        for split in SPLITS if args.split == "all" else (args.split,):
            started = time.perf_counter()
            clips = load_split(split, data_dir=args.data_dir, progress=True)
            negatives = build_negatives(split, split_clips=clips, data_dir=args.data_dir, seed=args.seed,
                                        scale=args.scale, progress=True)
            print(f"{split}: {len(negatives)} negatives {negatives.counts()}")
            if not args.no_keywords:
                keywords = synthetic_keywords(split, data_dir=args.data_dir, seed=args.seed, progress=True)
                print(f"{split}: {len(keywords)} synthetic keywords")
            folder = cache_paths(split, "negatives", args.data_dir)[0].parent
            print(f"{split}: {time.perf_counter() - started:.1f} s, cache {folder}")
        built = {split: read_manifest(split, data_dir=args.data_dir) for split in SPLITS
                 if cache_paths(split, "negatives", args.data_dir)[1].is_file()}
        shared = {pair: items for pair, items in split_overlaps(built).items() if items}
        print(f"splits {', '.join(built)}: " + (f"OVERLAP {shared}" if shared else "words and speakers disjoint"))
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_command(main)
