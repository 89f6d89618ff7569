"""Where a model's files are, checked before anything loads, and what its weights are.

- :func:`check_source`: a local path that does not exist, or a hub id that is not in the local
  cache while the hub is offline, fails at once with one line, before a tokenizer, a model or hours
  of generation (the alternative is a transformers traceback after the work is done).
- :func:`fingerprint`: a hash of a model folder's weight files (``*.safetensors``, ``*.bin``), so
  an evaluation folder records *which weights* it evaluated, not only their path: ``train
  --resume`` writes new weights under the same ``final/``, and the same weights reached through
  another path (relative, symlink) are the same model.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from justrl.errors import ModelLoadError

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
_CHUNK = 1 << 20


def looks_like_path(name: str) -> bool:
    """A name meant as a local path (absolute, ``./``, ``../``, ``~``), never a hub id."""
    return os.path.isabs(name) or name.startswith(("./", "../", "~", ".\\")) or name in (".", "..")


def _hub_offline() -> bool:
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _cached_snapshot(repo_id: str) -> Path | None:
    """The local snapshot folder of a hub id, where one is cached."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, malformed id, or huggingface_hub missing
        return None


def check_source(name: str, what: str = "model") -> Path | None:
    """The local folder of ``name`` (None for a hub id that will be fetched), or a one-line error.

    ``what`` names the argument in the message (``model``, ``--judge-model``, ``--tokenizer``).
    """
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{what} {name}: not a folder (give the folder holding config.json)")
        return path
    if looks_like_path(name) or name.count("/") > 1:
        raise ModelLoadError(f"{what} {name}: no such folder")
    if _hub_offline():
        snapshot = _cached_snapshot(name)
        if snapshot is None:
            raise ModelLoadError(f"{what} {name}: not a local folder, not in the local Hugging Face cache, "
                                 "and the hub is offline (HF_HUB_OFFLINE); download it first or give a folder")
        return snapshot
    return None


def weight_files(folder: Path) -> list[Path]:
    return sorted({p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern) if p.is_file()})


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(name: str, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"sha256": ..., "files": {file: {size, mtime_ns, sha256}}}`` of the model's weights.

    ``known`` is an earlier fingerprint: a file whose size and modification time are unchanged
    keeps its recorded hash instead of being read again (a 3 GB model takes seconds to hash). A hub
    id that is not cached locally is identified by its id alone.
    """
    folder = check_source(name)
    if folder is None:
        return {"sha256": hashlib.sha256(f"hub:{name}".encode()).hexdigest(), "files": {}, "hub_id": name}
    before = (known or {}).get("files", {})
    files: dict[str, dict[str, Any]] = {}
    for path in weight_files(folder):
        stat = path.stat()
        entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        old = before.get(path.name)
        if old and old.get("size") == entry["size"] and old.get("mtime_ns") == entry["mtime_ns"]:
            entry["sha256"] = old["sha256"]
        else:
            entry["sha256"] = _file_hash(path)
        files[path.name] = entry
    if not files:
        raise ModelLoadError(f"{name}: no weight files (*.safetensors, *.bin) in the folder")
    total = hashlib.sha256("".join(f"{k}:{v['size']}:{v['sha256']};" for k, v in files.items()).encode())
    return {"sha256": total.hexdigest(), "files": files}
