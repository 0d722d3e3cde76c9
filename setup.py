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


setup(ext_modules=_extensions())
