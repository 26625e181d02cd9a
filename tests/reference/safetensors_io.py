"""Minimal, dependency-light safetensors reader/writer (no `safetensors` package needed).

File layout (https://github.com/huggingface/safetensors):
    8 bytes   little-endian uint64 N = length of the JSON header
    N bytes   UTF-8 JSON header, padded with spaces to a multiple of 8:
              {"__metadata__": {...str: str...},
               "<name>": {"dtype": "F32"|"F16"|"BF16"|..., "shape": [...],
                          "data_offsets": [begin, end]}, ...}
              offsets are relative to the first byte after the header
    ...       raw little-endian tensor data

Tensors are handled as torch tensors. BF16 is written from torch's own
float32 -> bfloat16 conversion (round-to-nearest-even) and read back by
placing the 16 stored bits in the upper half of a float32.
"""
import json
import struct

import numpy as np
import torch

# safetensors dtype tag -> (torch dtype, bytes per element, numpy little-endian dtype used for raw IO)
_DTYPES = {
    "F64": (torch.float64, 8, "<f8"),
    "F32": (torch.float32, 4, "<f4"),
    "F16": (torch.float16, 2, "<f2"),
    "BF16": (torch.bfloat16, 2, "<u2"),
    "I64": (torch.int64, 8, "<i8"),
    "I32": (torch.int32, 4, "<i4"),
    "I16": (torch.int16, 2, "<i2"),
    "I8": (torch.int8, 1, "<i1"),
    "U8": (torch.uint8, 1, "<u1"),
    "BOOL": (torch.bool, 1, "<u1"),
}
_TORCH_TO_TAG = {v[0]: k for k, v in _DTYPES.items()}


def _tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        # the raw bit pattern of torch's bf16 (already round-to-nearest-even from f32)
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.bool:
        return t.numpy().astype("<u1").tobytes()
    tag = _TORCH_TO_TAG[t.dtype]
    return t.numpy().astype(_DTYPES[tag][2]).tobytes()


def save_file(tensors, path, metadata=None):
    """Write a dict name -> torch.Tensor to `path` (tensors laid out in sorted-name order).

    Tensors must already have the desired storage dtype (e.g. call .to(torch.bfloat16)).
    Returns the number of tensor-data bytes written.
    """
    header = {"__metadata__": dict(metadata if metadata is not None else {"format": "pt"})}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in _TORCH_TO_TAG:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        raw = _tensor_bytes(t)
        assert len(raw) == t.numel() * _DTYPES[_TORCH_TO_TAG[t.dtype]][1]
        header[name] = {
            "dtype": _TORCH_TO_TAG[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)
    return offset


def read_header(path):
    """Return (header dict without __metadata__, metadata dict, data start offset)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    meta = header.pop("__metadata__", {})
    return header, meta, 8 + n


def load_file(path, upcast_to_f32=False):
    """Read a safetensors file into a dict name -> torch.Tensor.

    With upcast_to_f32=True, floating tensors (F16/BF16/F64) are converted to float32
    (BF16 exactly: its bits become the upper 16 bits of the float32).
    """
    header, _, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out = {}
    for name, info in header.items():
        tag = info["dtype"]
        tdtype, size, npdt = _DTYPES[tag]
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * size:
            raise ValueError(f"{name}: byte range {e - b} != {count}*{size}")
        arr = np.frombuffer(data, dtype=npdt, count=count, offset=b).reshape(shape)
        if tag == "BF16":
            f32 = (arr.astype(np.uint32) << 16).view(np.float32)
            t = torch.from_numpy(f32.copy())
            if not upcast_to_f32:
                t = t.to(torch.bfloat16)  # exact: the value is representable in bf16
        elif tag == "BOOL":
            t = torch.from_numpy(arr.astype(np.bool_))
        else:
            t = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
            if upcast_to_f32 and t.is_floating_point():
                t = t.to(torch.float32)
        out[name] = t
    return out
