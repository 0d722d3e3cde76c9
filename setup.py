"""Build of the native extensions.

On a Raspberry Pi (or anywhere with numpy, Cython and a C compiler)::

    python setup.py build_ext --inplace

Every ``native/_*.pyx`` becomes an extension ``native._*``; the C files it needs
are named in its own ``# distutils: sources = ...`` header, so adding a module
needs no edit here.

``TINYML_EXTENSIONS=_frontend,_ring`` builds only the named extensions.
``TINYML_DEBUG_BUILD=1`` turns Cython's bounds checks back on and builds with
``-O1 -g -fsanitize=address,undefined`` for the sanitizer runs of the tests
(run them with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``).
"""
import os
import sys
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ONLY = [name for name in os.environ.get("TINYML_EXTENSIONS", "").split(",") if name]
DEBUG_BUILD = os.environ.get("TINYML_DEBUG_BUILD", "") not in ("", "0")


def _compile_args():
    if sys.platform == "win32":
        return ["/O2"], []
    if DEBUG_BUILD:
        flags = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]
        return flags, ["-fsanitize=address,undefined"]
    # Portable C: -O3 lets gcc/clang vectorise the plain loops with NEON on the Pi
    # and SSE/AVX here; no intrinsics, no -ffast-math (NaN checks must stay exact).
    return ["-O3", "-std=c99", "-fno-math-errno", "-Wall"], []


def _extensions():
    from Cython.Build import cythonize

    compile_args, link_args = _compile_args()
    extensions = [
        Extension(
            "native." + os.path.splitext(os.path.basename(pyx))[0],
            [pyx],
            include_dirs=["native/src"],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            libraries=[] if sys.platform == "win32" else ["m"],
        )
        for pyx in sorted(glob("native/_*.pyx"))
        if not ONLY or os.path.splitext(os.path.basename(pyx))[0] in ONLY
    ]
    directives = {
        "language_level": 3,
        "boundscheck": DEBUG_BUILD,
        "wraparound": False,
        "initializedcheck": DEBUG_BUILD,
        "cdivision": not DEBUG_BUILD,
        "embedsignature": True,
    }
    return cythonize(extensions, compiler_directives=directives, force=DEBUG_BUILD)


class BuildExtRebuildingOnModeChange(build_ext):
    """Rebuild everything when switching between debug and release builds.

    Without this, a release build right after a debug build keeps the
    sanitizer binaries, which are newer than their sources."""

    MODE_FILE = os.path.join("build", "tinyml-build-mode")

    def run(self):
        mode = "debug" if DEBUG_BUILD else "release"
        try:
            with open(self.MODE_FILE) as f:
                previous = f.read().strip()
        except OSError:
            previous = None
        if previous is not None and previous != mode:
            self.force = True
        super().run()
        os.makedirs(os.path.dirname(self.MODE_FILE), exist_ok=True)
        with open(self.MODE_FILE, "w") as f:
            f.write(mode)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtRebuildingOnModeChange})
