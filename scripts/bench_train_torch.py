#!/usr/bin/env python3
"""PyTorch reference for the obfnet training benchmark.

Does exactly the same work as `obfnet bench-train` (the Rust/burn side):

  1. one epoch of LeNet-5 training on MNIST from a fresh init
     -> lenet_epoch_s, lenet_step_ms_median
  2. one epoch of ObfNet2 training in front of the FROZEN LeNet from (1)
     -> obf_epoch_s, obf_step_ms_median
  3. the "K job": K ObfNet2 nets (seeds seed+1..seed+K), each trained
     --epochs epochs one after another against the frozen LeNet, each followed
     by its test-set evaluation (batch 1000, no_grad) -> k_job_s, obf_test_acc

CPU only, float32, Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8), batch 64,
a fresh random permutation per epoch, last partial batch included.

Progress goes to stderr; exactly one JSON object goes to stdout.
Only needs torch and numpy (see scripts/requirements-bench.txt); MNIST is read
from the raw IDX files (`obfnet fetch` puts them in data/mnist).
"""

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parent.parent
MEAN, STD = 0.1307, 0.3081
BATCH = 64
EVAL_BATCH = 1000
LR = 1e-3
BETAS = (0.9, 0.999)
EPS = 1e-8


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally .gz) into a numpy array."""
    if not path.exists() and Path(str(path) + ".gz").exists():
        path = Path(str(path) + ".gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: expected unsigned byte data (0x08), got {dtype_code:#x}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    n = int(np.prod(dims))
    if len(raw) - off != n:
        raise ValueError(f"{path}: size mismatch (header says {n} bytes, file has {len(raw) - off})")
    return np.frombuffer(raw, dtype=np.uint8, count=n, offset=off).reshape(dims)


def resolve_data_dir(d: Path) -> Path:
    """Accept both `data/mnist` and its parent `data` (what the Rust CLI takes)."""
    probe = "train-images-idx3-ubyte"
    for cand in (d, d / "mnist"):
        if (cand / probe).exists() or (cand / (probe + ".gz")).exists():
            return cand
    raise FileNotFoundError(
        f"MNIST IDX files not found in {d} (nor {d / 'mnist'}); run `target/release/obfnet fetch`")


def load_split(d: Path, prefix: str, limit=None):
    images = read_idx(d / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(d / f"{prefix}-labels-idx1-ubyte")
    assert images.shape[0] == labels.shape[0] and images.shape[1:] == (28, 28)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(((images.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32))
    x = x.reshape(-1, 1, 28, 28).contiguous()
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# ----------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------

class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class ObfNet2(nn.Module):
    """Linear 784->1000, ReLU, Linear 1000->784, ReLU, reshape to [B,1,28,28]."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 1000)
        self.fc2 = nn.Linear(1000, 784)

    def forward(self, x):
        b = x.shape[0]
        h = F.relu(self.fc1(x.reshape(b, 784)))
        h = F.relu(self.fc2(h))
        return h.reshape(b, 1, 28, 28)


def adam(params):
    return torch.optim.Adam(params, lr=LR, betas=BETAS, eps=EPS)


# ----------------------------------------------------------------------------
# training / evaluation
# ----------------------------------------------------------------------------

def train_epoch(forward, opt, x, y, gen, step_times, tag):
    """One epoch: fresh permutation, batch 64, last partial batch included.

    `forward(xb)` returns logits. Per-step wall times (seconds) are appended to
    `step_times`. Returns the mean training loss (computed after the epoch, from
    the per-step loss tensors, so no sync point is added inside the loop beyond
    what backward/step already imply)."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=gen)
    losses = []
    steps = (n + BATCH - 1) // BATCH
    report_every = max(1, steps // 5)
    for i in range(steps):
        t0 = time.perf_counter()
        idx = perm[i * BATCH:(i + 1) * BATCH]
        xb = x.index_select(0, idx)
        yb = y.index_select(0, idx)
        loss = F.cross_entropy(forward(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step_times.append(time.perf_counter() - t0)
        losses.append(loss.detach())
        if (i + 1) % report_every == 0 or i + 1 == steps:
            log(f"  [{tag}] step {i + 1}/{steps} loss {loss.item():.4f}")
    return torch.stack(losses).mean().item()


@torch.no_grad()
def accuracy(forward, x, y):
    correct = 0
    for i in range(0, x.shape[0], EVAL_BATCH):
        pred = forward(x[i:i + EVAL_BATCH]).argmax(dim=1)
        correct += (pred == y[i:i + EVAL_BATCH]).sum().item()
    return correct / x.shape[0]


def freeze(lenet):
    lenet.eval()
    for p in lenet.parameters():
        p.requires_grad_(False)
    return lenet


def median_ms(ts):
    return statistics.median(ts) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO_ROOT / "data" / "mnist")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the K job this many times and report the median (default 1)")
    ap.add_argument("--limit", type=int, default=None,
                    help="use only the first N training samples (smoke run)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    device = torch.device("cpu")

    data_dir = resolve_data_dir(args.data_dir if args.data_dir.is_absolute()
                                else (Path.cwd() / args.data_dir))
    xtr, ytr = load_split(data_dir, "train", args.limit)
    xte, yte = load_split(data_dir, "t10k")
    xtr, ytr, xte, yte = (t.to(device) for t in (xtr, ytr, xte, yte))
    log(f"torch {torch.__version__}, threads={torch.get_num_threads()}, "
        f"train={tuple(xtr.shape)}, test={tuple(xte.shape)}, data={data_dir}")

    # ---- 1. LeNet-5, one epoch from a fresh init ---------------------------
    torch.manual_seed(args.seed)
    lenet = LeNet5().to(device)
    lenet.train()
    opt = adam(lenet.parameters())
    gen = torch.Generator().manual_seed(args.seed)
    lenet_steps = []
    log("LeNet-5: 1 epoch")
    t0 = time.perf_counter()
    loss = train_epoch(lenet, opt, xtr, ytr, gen, lenet_steps, "lenet")
    lenet_epoch_s = time.perf_counter() - t0
    freeze(lenet)
    lenet_acc = accuracy(lenet, xte, yte)
    log(f"LeNet-5: epoch {lenet_epoch_s:.2f}s, step median {median_ms(lenet_steps):.3f} ms, "
        f"mean loss {loss:.4f}, test acc {lenet_acc:.4f}")

    def obf_forward(obf):
        return lambda xb: lenet(obf(xb))

    # ---- 2. ObfNet2, one epoch against the frozen LeNet --------------------
    torch.manual_seed(args.seed)
    obf = ObfNet2().to(device)
    opt = adam(obf.parameters())
    gen = torch.Generator().manual_seed(args.seed)
    obf_steps = []
    log("ObfNet2: 1 epoch against frozen LeNet")
    t0 = time.perf_counter()
    loss = train_epoch(obf_forward(obf), opt, xtr, ytr, gen, obf_steps, "obf")
    obf_epoch_s = time.perf_counter() - t0
    log(f"ObfNet2: epoch {obf_epoch_s:.2f}s, step median {median_ms(obf_steps):.3f} ms, "
        f"mean loss {loss:.4f}")
    del obf, opt

    # ---- 3. the K job (repeated --repeat times; the median is reported) ---
    k_job_runs = []
    k_steps = []
    for rep in range(max(1, args.repeat)):
        log(f"K job, run {rep + 1}/{args.repeat}: {args.k} ObfNet2 nets x {args.epochs} epoch(s), "
            "sequential, with test eval")
        obf_accs = []
        t_job = time.perf_counter()
        for k in range(1, args.k + 1):
            s = args.seed + k
            torch.manual_seed(s)
            obf = ObfNet2().to(device)
            opt = adam(obf.parameters())
            gen = torch.Generator().manual_seed(s)
            steps = []
            tk = time.perf_counter()
            for e in range(args.epochs):
                train_epoch(obf_forward(obf), opt, xtr, ytr, gen, steps, f"obf {k}/{args.k} ep {e + 1}")
            obf.eval()
            acc = accuracy(obf_forward(obf), xte, yte)
            obf_accs.append(acc)
            k_steps.extend(steps)
            log(f"  net {k}/{args.k} (seed {s}): {time.perf_counter() - tk:.2f}s, test acc {acc:.4f}")
            del obf, opt
        k_job_runs.append(time.perf_counter() - t_job)
        log(f"K job: {k_job_runs[-1]:.2f}s")
    k_job_s = statistics.median(k_job_runs)

    out = {
        "engine": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "lenet_epoch_s": lenet_epoch_s,
        "lenet_step_ms_median": median_ms(lenet_steps),
        "obf_epoch_s": obf_epoch_s,
        "obf_step_ms_median": median_ms(obf_steps),
        "k": args.k,
        "epochs": args.epochs,
        "k_job_s": k_job_s,
        "k_job_s_runs": k_job_runs,
        "k_step_ms_median": median_ms(k_steps),
        "lenet_test_acc": lenet_acc,
        "obf_test_acc": obf_accs,
        "seed": args.seed,
        "n_train": int(xtr.shape[0]),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
