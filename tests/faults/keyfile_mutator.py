"""A seeded mutator of key.json files (hypothesis is not in the lock): byte flips, cuts, and
mutations that keep the JSON valid but change one field (deleted, retyped, out of range,
base64 damaged, swapped method, extra fields), plus the known hostile cases (scrypt n = 2^30,
p = 100000, nesting and size bombs, duplicate fields, NaN, invalid UTF-8).

Used by tests/faults/test_keyfile.py and bench/keyfile_fuzz.py."""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Iterator
from typing import Any

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    -1,
    0,
    1,
    2**30,
    2**64,
    1.5,
    float("1e308"),
    "",
    "x" * 5000,
    [],
    {},
    [1, 2],
    {"a": 1},
]
KDF_EXTREMES = {
    "n": [0, 1, 3, 2**13, 2**15 + 1, 2**18, 2**20, 2**30, 2**31 - 1, -(2**15)],
    "r": [0, 17, 1000, 2**20, -8],
    "p": [0, 5, 64, 100000, -1],
}


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _del(obj: Any, path: tuple[Any, ...]) -> None:
    for k in path[:-1]:
        obj = obj[k]
    del obj[path[-1]]


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        obj = obj[k]
    return obj


def _b64_damage(rnd: random.Random, s: str) -> str:
    raw = bytearray(base64.b64decode(s))
    how = rnd.choice(["flip", "short", "long", "junk", "pad"])
    if how == "flip" and raw:
        raw[rnd.randrange(len(raw))] ^= 1 << rnd.randrange(8)
    elif how == "short":
        raw = raw[: rnd.randrange(len(raw))]
    elif how == "long":
        raw += bytes(rnd.randrange(1, 40))
    elif how == "junk":
        return s[:-2] + "!!"
    else:
        return s + "===="
    return base64.b64encode(bytes(raw)).decode()


def mutants(original: bytes, count: int, seed: int = 15) -> Iterator[tuple[str, bytes]]:
    """``count`` (label, bytes) mutants of ``original``, the same for the same seed."""
    rnd = random.Random(seed)
    rec = json.loads(original)
    fixed: list[tuple[str, bytes]] = []
    for field, values in KDF_EXTREMES.items():
        for v in values:
            r = copy.deepcopy(rec)
            r["kdf"][field] = v
            fixed.append((f"kdf.{field}={v}", json.dumps(r).encode()))
    fixed += [
        ("nesting bomb", b"[" * 30000 + b"]" * 30000),
        ("size bomb", b'{"version": 1, "pad": "' + b"x" * 200_000 + b'"}'),
        ("duplicate field", original.replace(b'"version": 1', b'"version": 1, "version": 1', 1)),
        ("NaN", original.replace(b'"version": 1', b'"version": NaN', 1)),
        ("invalid utf-8", original.replace(b'"method"', b'"meth\xff\xfeod"', 1)),
        ("empty", b""),
        ("json null", b"null"),
        ("huge int", original.replace(b'"version": 1', b'"version": 1' + b"0" * 5000, 1)),
    ]
    yield from fixed[:count]
    kinds = ["flip", "cut", "delete", "retype", "b64", "extra", "method", "profile_id", "check"]
    for i in range(max(0, count - len(fixed))):
        kind = kinds[i % len(kinds)]
        r = copy.deepcopy(rec)
        if kind == "flip":
            raw = bytearray(original)
            for _ in range(rnd.randint(1, 3)):
                raw[rnd.randrange(len(raw))] ^= 1 << rnd.randrange(8)
            yield f"flip #{i}", bytes(raw)
            continue
        if kind == "cut":
            yield f"cut #{i}", original[: rnd.randrange(len(original))]
            continue
        path = rnd.choice(_paths(r))
        label = ".".join(map(str, path))
        if kind == "delete":
            _del(r, path)
        elif kind == "retype":
            _set(r, path, copy.deepcopy(rnd.choice(ODD_VALUES)))
        elif kind == "b64":
            b64_paths = [("nonce",), ("sealed_key",), ("kdf", "salt")]
            path = rnd.choice(b64_paths)
            label = ".".join(path)
            _set(r, path, _b64_damage(rnd, _get(r, path)))
        elif kind == "extra":
            label = rnd.choice(["note", "mac", "kdf2", "account", "service"])
            r[label] = "x"
        elif kind == "method":
            label = "method"
            r["method"] = rnd.choice(["keyring", "plain", "", "PASSPHRASE"])
        elif kind == "profile_id":
            label = "profile_id"
            pid = list(r["profile_id"])
            pid[rnd.randrange(len(pid))] = rnd.choice("0123456789abcdefABCDEF-")
            r["profile_id"] = "".join(pid)
        elif kind == "check":
            label = "key_check"
            kc = list(r["key_check"])
            kc[rnd.randrange(len(kc))] = rnd.choice("0123456789abcdef")
            r["key_check"] = "".join(kc)
        yield f"{kind} {label} #{i}", json.dumps(r, indent=rnd.choice([None, 2])).encode()
