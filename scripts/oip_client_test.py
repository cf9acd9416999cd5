#!/usr/bin/env python3
"""Real Open Inference Protocol clients against a running `obfnet serve`.

Uses NVIDIA's tritonclient (HTTP and gRPC) and, when installed, KServe's InferenceRESTClient /
InferenceGRPCClient, unmodified, on real MNIST test images. Checks: health and metadata calls,
UINT8 and FP32 inputs, JSON and binary tensors, the same answers over every path, and the
model's accuracy on the images (so a server returning nonsense fails).

usage: oip_client_test.py HOST:PORT MNIST_DIR [--client triton|kserve] [--min-accuracy 0.9]
Run by scripts/oip-client-test.sh, which builds the venv and starts the server. The two client
libraries register the same protobuf names (`inference.*`), so each runs in its own process.
"""

import argparse
import asyncio
import struct
import sys

import numpy as np

MEAN, STD = 0.1307, 0.3081
MODEL = "lenet5"


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def triton_http(url, images, labels):
    import tritonclient.http as httpclient
    c = httpclient.InferenceServerClient(url=url)
    check(c.is_server_live(), "tritonclient http: server live")
    check(c.is_server_ready(), "tritonclient http: server ready")
    check(c.is_model_ready(MODEL), "tritonclient http: model ready")
    meta = c.get_server_metadata()
    check("binary_tensor_data" in meta["extensions"], "tritonclient http: server metadata")
    mm = c.get_model_metadata(MODEL)
    check(mm["inputs"][0]["name"] == "input", "tritonclient http: model metadata")

    results = {}
    # UINT8 raw pixels, binary in, binary out (tritonclient's defaults), batch of all images.
    x = images.reshape(len(images), 784)
    inp = httpclient.InferInput("input", list(x.shape), "UINT8")
    inp.set_data_from_numpy(x, binary_data=True)
    outs = [httpclient.InferRequestedOutput("label", binary_data=True),
            httpclient.InferRequestedOutput("probabilities", binary_data=True)]
    r = c.infer(MODEL, [inp], outputs=outs, request_id="t-1")
    results["http uint8 binary"] = (r.as_numpy("label"), r.as_numpy("probabilities"))
    # FP32 normalised, JSON in and out, [n,1,28,28].
    xf = ((images.astype(np.float32) / 255.0 - MEAN) / STD).reshape(len(images), 1, 28, 28)
    inp = httpclient.InferInput("input", list(xf.shape), "FP32")
    inp.set_data_from_numpy(xf, binary_data=False)
    outs = [httpclient.InferRequestedOutput("label", binary_data=False),
            httpclient.InferRequestedOutput("probabilities", binary_data=False)]
    r = c.infer(MODEL, [inp], outputs=outs)
    results["http fp32 json"] = (r.as_numpy("label"), r.as_numpy("probabilities"))
    # Compressed both ways: the request body with Content-Encoding gzip / deflate (the body
    # limit applies to the decompressed size), the reply compressed as the client accepts.
    for alg in ("gzip", "deflate"):
        for binary in (True, False):
            inp = httpclient.InferInput("input", list(x.shape), "UINT8")
            inp.set_data_from_numpy(x, binary_data=binary)
            outs = [httpclient.InferRequestedOutput("label", binary_data=binary),
                    httpclient.InferRequestedOutput("probabilities", binary_data=binary)]
            r = c.infer(MODEL, [inp], outputs=outs, request_compression_algorithm=alg,
                        response_compression_algorithm=alg)
            kind = "binary" if binary else "json"
            results[f"http uint8 {kind} {alg} both ways"] = (r.as_numpy("label"), r.as_numpy("probabilities"))
    # No outputs named: the client asks for binary outputs of everything.
    inp = httpclient.InferInput("input", [1, 784], "UINT8")
    inp.set_data_from_numpy(x[:1], binary_data=True)
    r = c.infer(MODEL, [inp])
    check(r.as_numpy("label").shape == (1,), "tritonclient http: default outputs")
    # A bad request surfaces as an exception with the server's message.
    try:
        bad = httpclient.InferInput("input", [1, 100], "UINT8")
        bad.set_data_from_numpy(np.zeros((1, 100), dtype=np.uint8))
        c.infer(MODEL, [bad])
        check(False, "tritonclient http: bad shape rejected")
    except Exception as e:  # tritonclient raises InferenceServerException
        check("shape" in str(e), f"tritonclient http: bad shape rejected ({str(e)[:60]}...)")
    return results


def triton_grpc(url, images):
    import tritonclient.grpc as grpcclient
    c = grpcclient.InferenceServerClient(url=url)
    check(c.is_server_live(), "tritonclient grpc: server live")
    check(c.is_server_ready(), "tritonclient grpc: server ready")
    check(c.is_model_ready(MODEL), "tritonclient grpc: model ready")
    check(c.get_server_metadata().name == "obfnet", "tritonclient grpc: server metadata")
    check(c.get_model_metadata(MODEL).inputs[0].name == "input", "tritonclient grpc: model metadata")
    x = images.reshape(len(images), 784)
    inp = grpcclient.InferInput("input", list(x.shape), "UINT8")
    inp.set_data_from_numpy(x)
    outs = [grpcclient.InferRequestedOutput("label"), grpcclient.InferRequestedOutput("probabilities")]
    r = c.infer(MODEL, [inp], outputs=outs, request_id="g-1")
    res = {"grpc uint8 raw": (r.as_numpy("label"), r.as_numpy("probabilities"))}
    xf = ((images.astype(np.float32) / 255.0 - MEAN) / STD).reshape(len(images), 784)
    inp = grpcclient.InferInput("input", list(xf.shape), "FP32")
    inp.set_data_from_numpy(xf)
    r = c.infer(MODEL, [inp])
    res["grpc fp32 raw"] = (r.as_numpy("label"), r.as_numpy("probabilities"))
    try:
        bad = grpcclient.InferInput("input", [1, 784], "FP32")
        bad.set_data_from_numpy(np.full((1, 784), np.nan, dtype=np.float32))
        c.infer(MODEL, [bad])
        check(False, "tritonclient grpc: NaN rejected")
    except Exception as e:
        check("NaN" in str(e) and "INVALID_ARGUMENT" in str(e), "tritonclient grpc: NaN rejected (INVALID_ARGUMENT)")
    return res


def kserve_clients(host_port, images):
    from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest
    from kserve.inference_client import RESTConfig

    async def run():
        res = {}
        x = images.reshape(len(images), 784)
        rest = InferenceRESTClient(config=RESTConfig(protocol="v2"))
        base = f"http://{host_port}"
        check(await rest.is_server_ready(base), "kserve rest: server ready")
        inp = InferInput(name="input", shape=list(x.shape), datatype="UINT8")
        inp.set_data_from_numpy(x, binary_data=False)
        req = InferRequest(model_name=MODEL, infer_inputs=[inp], request_id="k-1")
        resp = await rest.infer(base, req, model_name=MODEL)
        outs = {o.name: o.as_numpy() for o in resp.outputs}
        res["kserve rest uint8 json"] = (outs["label"], outs["probabilities"])
        await rest.close()
        g = InferenceGRPCClient(url=host_port)
        check(await g.is_server_ready(), "kserve grpc: server ready")
        inp = InferInput(name="input", shape=list(x.shape), datatype="UINT8")
        inp.set_data_from_numpy(x, binary_data=False)
        req = InferRequest(model_name=MODEL, infer_inputs=[inp], request_id="k-2")
        resp = await g.infer(req)
        outs = {o.name: o.as_numpy() for o in resp.outputs}
        res["kserve grpc uint8"] = (outs["label"], outs["probabilities"])
        await g.close()
        return res

    return asyncio.run(run())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("mnist_dir")
    ap.add_argument("--client", choices=["triton", "kserve"], default="triton")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--min-accuracy", type=float, default=0.9)
    a = ap.parse_args()
    images = read_idx(f"{a.mnist_dir}/t10k-images-idx3-ubyte")[: a.images]
    labels = read_idx(f"{a.mnist_dir}/t10k-labels-idx1-ubyte")[: a.images].astype(np.int64)
    if a.client == "triton":
        results = triton_http(a.addr, images, labels)
        results.update(triton_grpc(a.addr, images))
    else:
        results = kserve_clients(a.addr, images)
    ref_name = next(iter(results))
    ref_label, ref_probs = results[ref_name]
    for name, (lab, probs) in results.items():
        check(lab.shape == (len(images),) and probs.shape == (len(images), 10), f"{name}: shapes")
        check(np.array_equal(lab.astype(np.int64), ref_label.astype(np.int64)), f"{name}: same labels as {ref_name}")
        check(np.allclose(probs, ref_probs, atol=1e-4), f"{name}: same probabilities")
        check(np.allclose(probs.sum(axis=1), 1.0, atol=1e-4), f"{name}: probabilities sum to 1")
        check(np.array_equal(np.argmax(probs, axis=1), lab), f"{name}: label is the argmax")
    acc = float((ref_label == labels).mean())
    check(acc >= a.min_accuracy, f"accuracy on {len(images)} MNIST test images {acc:.3f} >= {a.min_accuracy}")
    print(f"all checks passed ({a.client}: {len(results)} client paths)")


if __name__ == "__main__":
    main()
