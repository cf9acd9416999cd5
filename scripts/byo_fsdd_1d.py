#!/usr/bin/env python3
"""The 1-D "bring your own model" case: sensor-like vectors from FSDD, a PyTorch 1-D CNN on them.

1. Reads the FSDD WAVs (8 kHz, 16-bit mono; DATA_DIR/fsdd/recordings/D_SPEAKER_TAKE.wav) with
   the standard library and NumPy only, and turns each clip into ONE uint8 vector of 128 values:
   the first second (zero-padded) cut into 16 segments of 500 samples, each Hann-windowed, its
   power spectrum summed into 8 log-spaced bands (100 Hz – 4 kHz), log10, then quantised to
   0..255 between the 1st and 99th percentile of the training split (clipped outside).
   Split: FSDD's official one (takes 0–4 of every speaker and digit are the test set).
   Writes OUT/fsdd_bands.npz with x_train [N,128], y_train [N], x_test, y_test (uint8).
2. Trains a small PyTorch 1-D CNN (Conv1d + BatchNorm1d + ReLU + MaxPool1d, twice, dropout,
   linear head) on the vectors and exports it with torch.onnx.export (opset 17, symbolic batch,
   input [N, 128]) to OUT/fsdd_cnn1d.onnx with its obfnet sidecar fsdd_cnn1d.obfnet.json.

Usage: byo_fsdd_1d.py DATA_DIR OUT_DIR [EPOCHS]   (run by scripts/byo-model.sh, .venv-bench)
"""
import json
import os
import sys
import time
import wave

import numpy as np

SEGMENTS, SEG_LEN, BANDS, RATE = 16, 500, 8, 8000
TEST_TAKES = 5


def clip_features(path):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit(f"{path}: expected 16-bit mono")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    x = np.pad(x[: SEGMENTS * SEG_LEN], (0, max(0, SEGMENTS * SEG_LEN - len(x))))
    segs = x.reshape(SEGMENTS, SEG_LEN) * np.hanning(SEG_LEN)
    power = np.abs(np.fft.rfft(segs, axis=1)) ** 2  # [16, 251], bin k at k·16 Hz
    freqs = np.fft.rfftfreq(SEG_LEN, 1.0 / RATE)
    edges = np.geomspace(100.0, RATE / 2, BANDS + 1)
    bands = np.stack(
        [power[:, (freqs >= lo) & (freqs < hi if i < BANDS - 1 else freqs <= hi)].sum(1)
         for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))], axis=1)
    return np.log10(bands + 1e-8).reshape(-1)  # [128], segment-major


def load(data_dir):
    rec = os.path.join(data_dir, "fsdd", "recordings")
    if not os.path.isdir(rec):
        raise SystemExit(f"missing {rec}; run `obfnet fetch --dataset fsdd`")
    tr, te = ([], []), ([], [])
    for name in sorted(os.listdir(rec)):
        if not name.endswith(".wav"):
            continue
        digit, _speaker, take = name[:-4].split("_")
        split = te if int(take) < TEST_TAKES else tr
        split[0].append(clip_features(os.path.join(rec, name)))
        split[1].append(int(digit))
    xtr, xte = np.stack(tr[0]), np.stack(te[0])
    lo, hi = np.percentile(xtr, 1), np.percentile(xtr, 99)
    q = lambda v: np.clip(np.round((v - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
    return q(xtr), np.array(tr[1], np.uint8), q(xte), np.array(te[1], np.uint8)


def main():
    data_dir, out_dir = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    os.makedirs(out_dir, exist_ok=True)
    xtr, ytr, xte, yte = load(data_dir)
    npz = os.path.join(out_dir, "fsdd_bands.npz")
    np.savez(npz, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    print(f"wrote {npz}: x_train {xtr.shape}, x_test {xte.shape} (uint8)")

    import torch
    from torch import nn

    scale = 1 / 255
    mean, std = float((xtr * scale).mean()), float((xtr * scale).std())

    class Cnn1d(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv1d(1, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
                nn.Conv1d(16, 32, 5, padding=2), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(2),
                nn.Dropout(0.25),
            )
            self.head = nn.Sequential(nn.Linear(32 * 32, 64), nn.ReLU(), nn.Dropout(0.25), nn.Linear(64, 10))

        def forward(self, x):
            return self.head(self.features(x.view(-1, 1, 128)).flatten(1))

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    norm = lambda x: (torch.from_numpy(x.astype(np.float32)) * scale - mean) / std
    Xtr, Ytr = norm(xtr), torch.from_numpy(ytr.astype(np.int64))
    Xte, Yte = norm(xte), torch.from_numpy(yte.astype(np.int64))
    model = Cnn1d()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(Xtr))
        for i in range(0, len(Xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(Xtr[b]), Ytr[b])
            loss.backward()
            opt.step()
        if epoch % 5 == 4 or epoch == epochs - 1:
            print(f"epoch {epoch}: last loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == Yte).float().mean().item()
    print(f"PyTorch test accuracy: {acc:.4f}")
    path = os.path.join(out_dir, "fsdd_cnn1d.onnx")
    torch.onnx.export(model, Xte[:2], path, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}}, opset_version=17, dynamo=False)
    with open(os.path.join(out_dir, "fsdd_cnn1d.obfnet.json"), "w") as f:
        json.dump({"version": 1, "scale": scale, "mean": [mean], "std": [std],
                   "classes": [str(d) for d in range(10)]}, f, indent=1)
    with open(os.path.join(out_dir, "fsdd_torch_accuracy.json"), "w") as f:
        json.dump({"torch_test_accuracy": acc, "epochs": epochs, "torch": torch.__version__}, f)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
