"""The store of a sharded run: one self-verifying ``.npz`` per shard and a ``manifest.json``.

A shard file holds plain NumPy arrays under readable names (``numpy.load`` opens it without the
kit), ``__result__`` (a JSON description that rebuilds the result object) and ``__meta__`` (JSON:
what the shard was computed from and a SHA-256 of its content). What it was computed from is a
fingerprint of the function and its options, of the model (every parameter and buffer, bit for
bit, and the classifier's settings) and of the shard's own input images. A shard is used only when
all of these match the run and its content hashes to what it says: a tampered, truncated or
copied-over shard, one of other images or of another function is computed again (and rewritten).

Every file is written under a temporary name and renamed into place (``os.replace``), so a reader
never sees half a file, and two identical runs into one store at once write the same bytes. A store
that cannot be read or written raises :class:`~.errors.StoreError` naming the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..classifier import Classifier
from .errors import StoreError
from .merge import count_rows, merge_results

FORMAT = "boundary_widgets.shards/2"
MANIFEST = "manifest.json"


# ---------------------------------------------------------------------------------------------------------------
# Fingerprints.


@dataclasses.dataclass(frozen=True)
class RunKey:
    """What every shard of a run depends on besides its own images (SHA-256 hex digests)."""

    function: str  # module.qualname of the sharded function
    options: str  # of the function's options and the classifier's settings
    model: str  # of every parameter and buffer of the model, bit for bit
    inputs: str  # of all the run's input images (for the manifest)

    @property
    def fingerprint(self) -> str:
        return _sha256(self.function, self.options, self.model, self.inputs)


def _sha256(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _update(digest: Any, value: object) -> None:
    """Hash a value canonically: arrays and tensors by dtype, shape and bytes; callables by name; the rest by repr."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"array{value.dtype.str}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _update(digest, item)
    elif isinstance(value, dict):
        digest.update(f"dict{len(value)}".encode())
        for key in sorted(value, key=repr):
            _update(digest, key)
            _update(digest, value[key])
    elif callable(value) and hasattr(value, "__qualname__"):
        digest.update(f"callable {value.__module__}.{value.__qualname__}".encode())  # a repr holds an address
    else:
        digest.update(repr(value).encode())


def _hash_of(*values: object) -> str:
    digest = hashlib.sha256()
    for value in values:
        _update(digest, value)
    return digest.hexdigest()


def run_key(
    function: Callable, clf: Classifier, options: Mapping[str, object], batches: Sequence[torch.Tensor]
) -> RunKey:
    """The fingerprints of a run: ``options`` are the function's (sorted by name), ``batches`` its sharded inputs."""
    name = f"{function.__module__}.{function.__qualname__}"
    return RunKey(
        function=name,
        options=_hash_of(sorted(options.items()), clf.settings()),
        model=_hash_of(dict(clf.net.state_dict())),
        inputs=inputs_digest(batches, 0, len(batches[0])),
    )


def inputs_digest(batches: Sequence[torch.Tensor], start: int, stop: int) -> str:
    """The fingerprint of images ``[start, stop)`` of each sharded input."""
    return _hash_of([batch[start:stop] for batch in batches])


# ---------------------------------------------------------------------------------------------------------------
# Result objects <-> plain arrays and a JSON description.


def _encode(value: object, key: str, arrays: dict[str, np.ndarray]) -> object:
    """A JSON description of ``value``; its arrays go into ``arrays`` under ``key`` ('/'-separated names)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = type(value)
        return {
            "dataclass": f"{kind.__module__}:{kind.__qualname__}",
            "fields": {
                f.name: _encode(getattr(value, f.name), f"{key}/{f.name}".lstrip("/"), arrays)
                for f in dataclasses.fields(value)
            },
        }
    if isinstance(value, list):
        return {"list": [_encode(item, f"{key}/{i}".lstrip("/"), arrays) for i, item in enumerate(value)]}
    if isinstance(value, torch.Tensor):
        arrays[key] = value.detach().cpu().numpy()
        return {"array": key, "as": "tensor"}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"cannot store an object array ({key}).")
        arrays[key] = value
        return {"array": key}
    if isinstance(value, tuple):
        if value and all(isinstance(item, str) for item in value):
            arrays[key] = np.array(value, dtype=str)
            return {"array": key, "as": "str_tuple"}
        if value and all(isinstance(item, int | float) and not isinstance(item, bool) for item in value):
            return {"tuple": list(value)}
        return {"items": [_encode(item, f"{key}/{i}".lstrip("/"), arrays) for i, item in enumerate(value)]}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return {"value": value}
    raise TypeError(f"cannot store a value of type {type(value).__name__} ({key}).")


def _decode(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> object:
    if "dataclass" in spec:
        module, qualname = spec["dataclass"].split(":")
        if not module.startswith("boundary_widgets."):
            raise ValueError(f"it names a class outside boundary_widgets: {spec['dataclass']!r}")
        kind = getattr(importlib.import_module(module), qualname, None)
        if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
            raise ValueError(f"it names a class that is not a result: {spec['dataclass']!r}")
        return kind(**{name: _decode(field, arrays) for name, field in spec["fields"].items()})
    if "list" in spec:
        return [_decode(item, arrays) for item in spec["list"]]
    if "items" in spec:
        return tuple(_decode(item, arrays) for item in spec["items"])
    if "tuple" in spec:
        return tuple(spec["tuple"])
    if "array" in spec:
        array = arrays[spec["array"]]
        if spec.get("as") == "tensor":
            return torch.from_numpy(np.array(array))
        if spec.get("as") == "str_tuple":
            return tuple(str(item) for item in array)
        return np.array(array)
    return spec["value"]


def _content_digest(description: str, arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256(description.encode())
    for name in sorted(arrays):
        digest.update(name.encode())
        _update(digest, arrays[name])
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Files.


def shard_path(folder: Path, start: int, stop: int) -> Path:
    return folder / f"shard-{start:08d}-{stop:08d}.npz"


def _write_atomically(path: Path, write: Callable[[Any], None]) -> None:
    """``write(file)`` to a temporary file beside ``path``, then rename it into place; ``StoreError`` on failure."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as file:
            write(file)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise StoreError(f"cannot write the store file {str(path)!r}: {error}", path) from error


def _computed_from(key: RunKey, inputs: str, start: int, stop: int) -> dict[str, object]:
    """What a shard was computed from: written into it, and compared on every read."""
    return {
        "function": key.function,
        "options": key.options,
        "model": key.model,
        "inputs": inputs,
        "start": start,
        "stop": stop,
    }


def write_shard(path: Path, result: object, key: RunKey, inputs: str, start: int, stop: int) -> None:
    """Write one shard's result with what it was computed from; ``StoreError`` naming the file on failure."""
    arrays: dict[str, np.ndarray] = {}
    description = json.dumps(_encode(result, "", arrays))
    meta = {
        "format": FORMAT,
        **_computed_from(key, inputs, start, stop),
        "rows": count_rows(result),
        "content": _content_digest(description, arrays),
    }
    arrays["__result__"] = np.array(description)
    arrays["__meta__"] = np.array(json.dumps(meta))
    _write_atomically(path, lambda file: np.savez(file, **arrays))


def _load(path: Path) -> tuple[dict[str, Any], object]:
    """A shard file's metadata and its result, its content verified; ``ValueError`` saying what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as error:  # BadZipFile, EOFError, OSError, ValueError: the file is not a whole shard
        raise ValueError(f"it is not a readable .npz archive ({type(error).__name__}: {error})") from error
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
        description = str(arrays.pop("__result__"))
    except (KeyError, ValueError) as error:
        raise ValueError("it is not a shard of this format (no __meta__/__result__)") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"it is not a shard of the format {FORMAT!r}")
    if _content_digest(description, arrays) != meta.get("content"):
        raise ValueError("its content does not match its checksum (the file was changed after it was written)")
    try:
        result = _decode(json.loads(description), arrays)
        rows = count_rows(result)
    except Exception as error:
        raise ValueError(f"its result cannot be rebuilt ({type(error).__name__}: {error})") from error
    if rows != meta.get("rows") or rows != meta.get("stop", 0) - meta.get("start", 0):
        raise ValueError(f"it holds {rows} rows for images [{meta.get('start')}, {meta.get('stop')})")
    return meta, result


def load_shard(path: Path, key: RunKey, inputs: str, start: int, stop: int) -> object | None:
    """The stored result of images ``[start, stop)`` of this run, or ``None`` when there is none that verifies."""
    try:
        meta, result = _load(path)
    except (ValueError, FileNotFoundError):
        return None
    expected = _computed_from(key, inputs, start, stop)
    return result if all(meta.get(name) == value for name, value in expected.items()) else None


def read_shard(path: str | os.PathLike) -> object:
    """The result object of one shard file of a store, its content verified (``numpy.load`` reads the same file
    without the kit). ``StoreError`` naming the file when it cannot be read or does not verify."""
    return _read_verified(Path(path))[1]


# ---------------------------------------------------------------------------------------------------------------
# The manifest: which run a store holds, and its shard size.


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path``; ``ValueError`` saying what is wrong with it (``FileNotFoundError`` if absent)."""
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"it cannot be read as JSON ({type(error).__name__}: {error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"it is not a manifest of the format {FORMAT!r}")
    for name in ("n_images", "shard_size"):
        value = manifest.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"its {name!r} must be an int >= 1; got {value!r}")
    if not isinstance(manifest.get("fingerprint"), str):
        raise ValueError("it has no fingerprint")
    return manifest


def open_store(folder: Path, key: RunKey, n: int, shard_size: int | None, default_size: Callable[[], int]) -> int:
    """Create or check the store's manifest before any work; returns the shard size the store uses.

    A manifest of another run is refused (``ValueError``); one that cannot be read is replaced (the
    shards verify themselves). ``StoreError`` naming the folder or file when the store cannot be made.
    """
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"`store` must be a folder; {str(folder)!r} is a file.", folder)
    path = folder / MANIFEST
    try:
        manifest = _read_manifest(path)
    except (FileNotFoundError, ValueError):
        manifest = None
    if manifest is None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the store folder {str(folder)!r}: {error}", folder) from error
        manifest = {
            "format": FORMAT,
            "function": key.function,
            "options": key.options,
            "model": key.model,
            "n_images": n,
            "shard_size": shard_size if shard_size is not None else default_size(),
            "fingerprint": key.fingerprint,
            "files": "shard-<start>-<stop>.npz: images [start, stop); numpy.load(path) reads the arrays",
        }
        manifest = _publish_manifest(path, manifest)
    if manifest["fingerprint"] != key.fingerprint or manifest["n_images"] != n:
        raise ValueError(
            f"`store` {str(folder)!r} holds shards of another run ({manifest.get('function')} over "
            f"{manifest['n_images']} images, other options, images or model); use a new folder or empty it."
        )
    if shard_size is not None and shard_size != manifest["shard_size"]:
        raise ValueError(
            f"`shard_size` must be {manifest['shard_size']}, the size the store {str(folder)!r} was started with; "
            f"got {shard_size}."
        )
    return manifest["shard_size"]


def _publish_manifest(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write the manifest unless a valid one appeared meanwhile (a concurrent run): returns the one in place."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    text = json.dumps(manifest, indent=1)
    try:
        temporary.write_text(text)
        try:
            os.link(temporary, path)  # fails if a manifest exists: the first run's wins
            return manifest
        except FileExistsError:
            try:
                return _read_manifest(path)
            except (FileNotFoundError, ValueError):
                os.replace(temporary, path)  # an unreadable one: replace it
                return manifest
        except OSError:
            os.replace(temporary, path)  # a file system without hard links
            return manifest
    except OSError as error:
        raise StoreError(f"cannot write the store file {str(path)!r}: {error}", path) from error
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def read_store(store: str | os.PathLike) -> object:
    """The result of a completed run from its store, the shards concatenated in input order.

    Each shard is verified (its content checksum, its row count, and that it belongs to the run the
    manifest names); ``StoreError`` naming the file that is missing, unreadable or does not verify.
    """
    folder = Path(store)
    path = folder / MANIFEST
    try:
        manifest = _read_manifest(path)
    except (FileNotFoundError, ValueError) as error:
        raise StoreError(f"the store manifest {str(path)!r} cannot be used: {error}.", path) from error
    n, size = manifest["n_images"], manifest["shard_size"]
    parts = []
    for start in range(0, n, size):
        stop = min(start + size, n)
        shard = shard_path(folder, start, stop)
        if not shard.exists():
            raise StoreError(f"the store {str(folder)!r} is incomplete: {shard.name} is missing.", shard)
        meta, result = _read_verified(shard)
        run = [meta.get(name) == manifest.get(name) for name in ("function", "options", "model")]
        if not all(run) or (meta.get("start"), meta.get("stop")) != (start, stop):
            raise StoreError(
                f"the store file {str(shard)!r} cannot be used: it holds images [{meta.get('start')}, "
                f"{meta.get('stop')}) of {meta.get('function')}, not those of this store's run.",
                shard,
            )
        parts.append(result)
    return merge_results(parts)


def _read_verified(path: Path) -> tuple[dict[str, Any], object]:
    try:
        return _load(path)
    except ValueError as error:
        raise StoreError(f"the store file {str(path)!r} cannot be used: {error}.", path) from error


__all__ = ["RunKey", "StoreError", "inputs_digest", "read_shard", "read_store", "run_key"]
