"""Builds strategy_consumer._core with CMake for `pip install --no-build-isolation .` (metadata: pyproject.toml).

Only Debian's build tools are needed (cmake, a C++ compiler, pybind11-dev and the libraries of
deps/debian-packages.txt); nothing is downloaded.
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        target_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                        "-DSTRATEGY_CONSUMER_BUILD_TESTS=OFF", "-DSTRATEGY_CONSUMER_BUILD_BENCHMARKS=OFF",
                        f"-DPython3_EXECUTABLE={sys.executable}", f"-DCORE_MODULE_DIR={target_dir}"], check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_core", "-j", str(os.cpu_count() or 2)],
                       check=True)


setup(ext_modules=[CMakeExtension("strategy_consumer._core")], cmdclass={"build_ext": CMakeBuild})
