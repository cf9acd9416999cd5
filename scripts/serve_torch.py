"""Reference Python inference server for scripts/bench-serve.sh: the same LeNet-5 weights as
`obfnet serve`, in PyTorch (eager, f32, `torch.inference_mode`), behind FastAPI + uvicorn.

It speaks the subset of the Open Inference Protocol v2 REST API that the load generator
(crates/obfnet-serve/examples/loadgen.rs) uses: `POST /v2/models/<name>/infer` with the binary
tensor extension (`Inference-Header-Content-Length` header; a JSON header naming one input
`input` of datatype UINT8 and shape [n, 784] / [n, 28, 28] / [n, 1, 28, 28], followed by its
raw bytes), answered with the `label` output as JSON. Raw bytes are normalised with the model's
`config.json` normalisation, as `obfnet serve` does. Plus `GET /v2/health/ready`.

    python scripts/serve_torch.py MODEL_DIR PORT [THREADS]

Prints one JSON line `{"addr": "127.0.0.1:PORT"}` once listening. Run only from the benchmark
venv (.venv-bench, scripts/bench-venv.sh): PyTorch, FastAPI and uvicorn are not dependencies of
the project.
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import uvicorn
from fastapi import FastAPI, Request, Response


def load_safetensors(path: Path) -> dict:
    """The F32 tensors of a safetensors file (8-byte header length, JSON header, raw data)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if spec["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {spec['dtype']} (expected F32)")
        lo, hi = spec["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype="<f4").reshape(spec["shape"]).copy()
        out[name] = torch.from_numpy(arr)
    return out


class LeNet5(torch.nn.Module):
    """obfnet's LeNet-5 (crates/obfnet-nn/src/lenet.rs) with burn's saved weights. burn's
    Linear keeps its weight as [in, out], hence the transposes."""

    def __init__(self, t: dict, rows: int, cols: int):
        super().__init__()
        self.rows, self.cols = rows, cols
        self.c1w, self.c1b = t["conv1.weight"], t["conv1.bias"]
        self.c2w, self.c2b = t["conv2.weight"], t["conv2.bias"]
        self.f1w, self.f1b = t["fc1.weight"].t().contiguous(), t["fc1.bias"]
        self.f2w, self.f2b = t["fc2.weight"].t().contiguous(), t["fc2.bias"]
        self.f3w, self.f3b = t["fc3.weight"].t().contiguous(), t["fc3.bias"]

    def forward(self, x):
        x = x.reshape(-1, 1, self.rows, self.cols)
        x = F.max_pool2d(F.relu(F.conv2d(x, self.c1w, self.c1b, padding=2)), 2)
        x = F.max_pool2d(F.relu(F.conv2d(x, self.c2w, self.c2b)), 2)
        x = x.flatten(1)
        x = F.relu(F.linear(x, self.f1w, self.f1b))
        x = F.relu(F.linear(x, self.f2w, self.f2b))
        return F.linear(x, self.f3w, self.f3b)


def build(model_dir: Path):
    cfg = json.loads((model_dir / "config.json").read_text())
    rows, cols = cfg["model"]["input"]
    scale, mean, std = cfg["normalisation"]
    model = LeNet5(load_safetensors(model_dir / "model.safetensors"), rows, cols).eval()
    dim = rows * cols
    app = FastAPI()

    def error(status: int, msg: str) -> Response:
        return Response(json.dumps({"error": msg}), status_code=status, media_type="application/json")

    @app.get("/v2/health/ready")
    async def ready():
        return {"ready": True}

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request):
        body = await request.body()
        hlen = request.headers.get("inference-header-content-length")
        try:
            hlen = int(hlen) if hlen is not None else len(body)
            header = json.loads(body[:hlen])
            inp = header["inputs"][0]
            if inp.get("datatype") != "UINT8":
                return error(400, "only UINT8 binary inputs are supported here")
            raw = body[hlen:]
            if len(raw) == 0 or len(raw) % dim:
                return error(400, f"binary input of {len(raw)} bytes is not n x {dim}")
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return error(400, f"bad request: {e}")
        n = len(raw) // dim
        x = torch.frombuffer(bytearray(raw), dtype=torch.uint8).to(torch.float32)
        x = (x * scale - mean) / std
        with torch.inference_mode():
            labels = model(x.reshape(n, dim)).argmax(dim=1).tolist()
        out = {
            "model_name": name,
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [n], "data": labels}],
        }
        return Response(json.dumps(out), media_type="application/json")

    return app


def main():
    model_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    app = build(model_dir)
    print(json.dumps({"addr": f"127.0.0.1:{port}"}), flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
