"""Builds panal's C++ extension (panal._core) with CMake.

The pyproject.toml holds the metadata; this file only teaches setuptools'
build_ext to drive CMake. PANAL_BUILD_DIR picks the CMake build directory
(default: build/python), so repeated installs are incremental.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = Path(os.environ.get("PANAL_BUILD_DIR", ROOT / "build" / "python"))
        build_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["cmake", "-S", str(ROOT), "-B", str(build_dir),
             "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DPANAL_PYTHON=ON",
             f"-DPython_EXECUTABLE={sys.executable}"],
            check=True, stdout=subprocess.DEVNULL)
        jobs = os.environ.get("PANAL_JOBS", "2")
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_core", "-j", jobs], check=True)
        built = sorted(build_dir.glob("_core*.so"))
        if not built:
            raise RuntimeError(f"CMake did not produce _core*.so in {build_dir}")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built[-1], target)


setup(ext_modules=[CMakeExtension("panal._core")], cmdclass={"build_ext": CMakeBuild})
