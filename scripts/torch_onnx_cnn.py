#!/usr/bin/env python3
"""Trains a small PyTorch CNN (BatchNorm + dropout) on Fashion-MNIST and exports it to ONNX with
torch.onnx.export (opset 17, symbolic batch), plus its obfnet sidecar (model.obfnet.json).

Usage: torch_onnx_cnn.py DATA_DIR OUT_DIR [EPOCHS]   (run by scripts/onnx-torch-model.sh)
Reads DATA_DIR/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
"""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

MEAN, STD = 0.2860, 0.3530


def idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            data = open(p, "rb").read()
            if p.endswith(".gz"):
                data = gzip.decompress(data)
            ndim = data[3]
            dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise SystemExit(f"missing {path}; run `obfnet fetch --dataset fashion-mnist`")


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.25),
        )
        self.head = nn.Sequential(nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Dropout(0.25), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(self.features(x).view(x.size(0), -1))


def main():
    data_dir, out_dir = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    os.makedirs(out_dir, exist_ok=True)
    d = os.path.join(data_dir, "fashion-mnist")
    xtr, ytr = idx(f"{d}/train-images-idx3-ubyte"), idx(f"{d}/train-labels-idx1-ubyte")
    xte, yte = idx(f"{d}/t10k-images-idx3-ubyte"), idx(f"{d}/t10k-labels-idx1-ubyte")
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    norm = lambda x: (torch.from_numpy(x.astype(np.float32)) / 255.0 - MEAN) / STD
    Xtr, Ytr = norm(xtr).unsqueeze(1), torch.from_numpy(ytr.astype(np.int64))
    Xte, Yte = norm(xte).unsqueeze(1), torch.from_numpy(yte.astype(np.int64))
    model = Cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(Xtr))
        for i in range(0, len(Xtr), 128):
            b = perm[i:i + 128]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(Xtr[b]), Ytr[b])
            loss.backward()
            opt.step()
        print(f"epoch {epoch}: last loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == Yte).float().mean().item()
    print(f"PyTorch test accuracy: {acc:.4f}")
    path = os.path.join(out_dir, "fmnist_cnn.onnx")
    torch.onnx.export(model, Xte[:2], path, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}}, opset_version=17, dynamo=False)
    with open(os.path.join(out_dir, "fmnist_cnn.obfnet.json"), "w") as f:
        json.dump({"version": 1, "scale": 1 / 255, "mean": [MEAN], "std": [STD],
                   "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                               "Sneaker", "Bag", "Ankle boot"]}, f, indent=1)
    with open(os.path.join(out_dir, "torch_accuracy.json"), "w") as f:
        json.dump({"torch_test_accuracy": acc, "epochs": epochs, "torch": torch.__version__}, f)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
