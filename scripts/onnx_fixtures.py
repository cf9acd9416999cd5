#!/usr/bin/env python3
"""Writes the ONNX parity fixtures of obfnet-onnx: small graphs built with onnx.helper that
together cover every supported operator, a random input each, and onnxruntime's output on it.

Usage: onnx_fixtures.py OUT_DIR   (run by scripts/onnx-venv.sh inside .venv-onnx)

For each case NAME: NAME.onnx and NAME.json = {"opset", "input_shape", "input", "output_shape",
"output"} (flat row-major float lists). The Rust test (crates/obfnet-onnx/tests/parity.rs) runs
every NAME.onnx and compares with onnxruntime's output within 1e-4 relative.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
rng = np.random.default_rng(20261128)
SESSION = ort.SessionOptions()
SESSION.log_severity_level = 3  # the first run (output shape not declared yet) warns


def const(name, arr):
    arr = np.asarray(arr)
    return numpy_helper.from_array(arr, name)


def rand(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


class Case:
    def __init__(self, name, in_shape, sym_batch=False):
        self.name = name
        self.in_shape = list(in_shape)
        self.sym_batch = sym_batch
        self.nodes = []
        self.inits = []
        self.n = 0

    def init(self, arr, name=None):
        name = name or f"c{len(self.inits)}"
        self.inits.append(const(name, arr))
        return name

    def node(self, op, inputs, **attrs):
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}_{self.n}", **attrs))
        return out

    def finish(self, out_dir, last, x=None):
        shape = list(self.in_shape)
        decl = ["N"] + shape[1:] if self.sym_batch else shape
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, decl)],
            [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)],
            initializer=self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        # The output's shape is taken from a first onnxruntime run, then declared (the checker
        # wants one; the batch stays symbolic where the input's is).
        model.graph.output[0].type.tensor_type.shape.Clear()
        path = os.path.join(out_dir, self.name + ".onnx")
        onnx.save(model, path)
        if x is None:
            x = rand(*shape)
        sess = ort.InferenceSession(path, SESSION, providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"x": x})
        out_decl = list(y.shape)
        if self.sym_batch and out_decl:
            out_decl[0] = "N"
        model.graph.output[0].CopyFrom(helper.make_tensor_value_info(last, TensorProto.FLOAT, out_decl))
        onnx.checker.check_model(model)
        onnx.save(model, path)
        sess = ort.InferenceSession(path, SESSION, providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"x": x})
        with open(os.path.join(out_dir, self.name + ".json"), "w") as f:
            json.dump(
                {
                    "opset": OPSET,
                    "input_shape": list(x.shape),
                    "input": x.ravel().tolist(),
                    "output_shape": list(y.shape),
                    "output": y.astype(np.float64).ravel().tolist(),
                },
                f,
            )


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)

    # Conv with padding + bias + Relu
    c = Case("conv_relu", [2, 3, 9, 9])
    t = c.node("Conv", ["x", c.init(rand(4, 3, 3, 3)), c.init(rand(4))], pads=[1, 1, 1, 1])
    c.finish(out_dir, c.node("Relu", [t]))

    # Conv: groups, dilation, strides, asymmetric pads, no bias
    c = Case("conv_groups_dilation", [2, 4, 11, 10])
    t = c.node("Conv", ["x", c.init(rand(6, 2, 3, 2))], group=2, dilations=[2, 1], strides=[2, 3],
               pads=[1, 0, 2, 1])
    c.finish(out_dir, t)

    # Depthwise conv with auto_pad SAME_UPPER
    c = Case("conv_depthwise_same", [1, 3, 8, 7])
    t = c.node("Conv", ["x", c.init(rand(3, 1, 3, 3)), c.init(rand(3))], group=3, strides=[2, 2],
               auto_pad="SAME_UPPER")
    c.finish(out_dir, t)

    # Conv 1-D + MaxPool 1-D + AveragePool 1-D
    c = Case("conv1d_pool1d", [2, 2, 20])
    t = c.node("Conv", ["x", c.init(rand(3, 2, 5)), c.init(rand(3))], pads=[2, 1], strides=[1])
    t = c.node("MaxPool", [t], kernel_shape=[3], strides=[2], pads=[1, 1])
    t = c.node("AveragePool", [t], kernel_shape=[2], strides=[1])
    c.finish(out_dir, t)

    # Gemm fused to Linear (transB=1) and a general Gemm (transA, alpha, beta)
    c = Case("gemm_linear", [3, 7])
    t = c.node("Gemm", ["x", c.init(rand(5, 7)), c.init(rand(5))], transB=1)
    c.finish(out_dir, t)
    c = Case("gemm_general", [6, 3])
    t = c.node("Gemm", ["x", c.init(rand(6, 4)), c.init(rand(1, 4))], transA=1, alpha=0.5, beta=2.0)
    c.finish(out_dir, t)

    # MatMul: 3-D input by 2-D weight, batched MatMul with a 3-D constant, 1-D weight
    c = Case("matmul", [2, 3, 4])
    t = c.node("MatMul", ["x", c.init(rand(4, 5))])
    t = c.node("MatMul", [t, c.init(rand(2, 5, 3))])
    t = c.node("MatMul", [t, c.init(rand(3))])
    c.finish(out_dir, t)

    # Arithmetic with broadcasting
    c = Case("arith", [2, 3, 4])
    t = c.node("Add", ["x", c.init(rand(4))])
    t = c.node("Sub", [t, c.init(rand(3, 1))])
    t = c.node("Mul", [t, c.init(rand(1, 3, 4))])
    t = c.node("Div", [t, c.init((np.abs(rand(4)) + 0.5).astype(np.float32))])
    t = c.node("Sub", [c.init(np.array(1.5, dtype=np.float32)), t])
    c.finish(out_dir, t)

    # Activations
    c = Case("activations", [2, 5, 3])
    a = c.node("LeakyRelu", ["x"], alpha=0.1)
    b = c.node("Sigmoid", [a])
    d = c.node("Tanh", ["x"])
    e = c.node("Add", [b, d])
    f = c.node("Clip", [e, c.init(np.array(-0.3, dtype=np.float32)), c.init(np.array(0.9, dtype=np.float32))])
    g = c.node("Relu", ["x"])
    h = c.node("Mul", [f, g])
    s = c.node("Softmax", [h], axis=1)
    ls = c.node("LogSoftmax", ["x"], axis=-1)
    c.finish(out_dir, c.node("Add", [s, ls]), x=rand(2, 5, 3, scale=2.0))

    c = Case("clip_min_only", [3, 4])
    c.finish(out_dir, c.node("Clip", ["x", c.init(np.array(0.1, dtype=np.float32))]))

    # Pools 2-D
    c = Case("maxpool", [2, 2, 9, 8])
    t = c.node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c.finish(out_dir, t)
    c = Case("maxpool_ceil_dilation", [1, 2, 10, 11])
    t = c.node("MaxPool", ["x"], kernel_shape=[2, 3], strides=[2, 2], dilations=[2, 1], ceil_mode=1)
    c.finish(out_dir, t)
    c = Case("avgpool_pad_excluded", [2, 3, 7, 7])
    t = c.node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c.finish(out_dir, t)
    c = Case("avgpool_pad_included", [2, 3, 7, 6])
    t = c.node("AveragePool", ["x"], kernel_shape=[2, 3], strides=[2, 1], pads=[0, 1, 1, 1],
               count_include_pad=1)
    c.finish(out_dir, t)
    c = Case("global_avgpool", [3, 4, 5, 6])
    c.finish(out_dir, c.node("GlobalAveragePool", ["x"]))

    # BatchNormalization (inference)
    c = Case("batchnorm", [2, 3, 4, 5])
    t = c.node("BatchNormalization", ["x", c.init(rand(3)), c.init(rand(3)), c.init(rand(3)),
                                      c.init((np.abs(rand(3)) + 0.1).astype(np.float32))], epsilon=1e-3)
    c.finish(out_dir, t)

    # Flatten, Transpose, Dropout, Identity
    c = Case("flatten_transpose", [2, 3, 4, 5])
    t = c.node("Transpose", ["x"], perm=[0, 2, 3, 1])
    t = c.node("Dropout", [t])
    t = c.node("Identity", [t])
    t = c.node("Flatten", [t], axis=2)
    c.finish(out_dir, t)

    # PyTorch's x.view(x.size(0), -1) with a symbolic batch: Shape/Gather/Unsqueeze/Concat/Reshape
    c = Case("reshape_dynamic", [4, 2, 3, 3], sym_batch=True)
    s = c.node("Shape", ["x"])
    g = c.node("Gather", [s, c.init(np.array(0, dtype=np.int64))], axis=0)
    u = c.node("Unsqueeze", [g, c.init(np.array([0], dtype=np.int64))])
    k = c.node("Constant", [], value=const("minus1", np.array([-1], dtype=np.int64)))
    cat = c.node("Concat", [u, k], axis=0)
    t = c.node("Reshape", ["x", cat])
    t = c.node("Gemm", [t, c.init(rand(18, 4)), c.init(rand(4))])
    c.finish(out_dir, t)

    # Static Reshape, Squeeze, Unsqueeze on floats, Concat on floats, Gather on floats
    c = Case("shape_ops_float", [2, 6])
    t = c.node("Reshape", ["x", c.init(np.array([0, 3, -1], dtype=np.int64))])
    t = c.node("Unsqueeze", [t, c.init(np.array([1], dtype=np.int64))])
    t = c.node("Squeeze", [t, c.init(np.array([1], dtype=np.int64))])
    g = c.node("Gather", [t, c.init(np.array([2, 0], dtype=np.int64))], axis=1)
    t = c.node("Concat", [t, g], axis=1)
    c.finish(out_dir, t)

    # A small classifier with everything a PyTorch CNN export has (symbolic batch)
    c = Case("cnn_all", [5, 3, 16, 16], sym_batch=True)
    t = c.node("Conv", ["x", c.init(rand(8, 3, 3, 3, scale=0.3)), c.init(rand(8, scale=0.1))], pads=[1, 1, 1, 1])
    t = c.node("BatchNormalization", [t, c.init(rand(8)), c.init(rand(8)), c.init(rand(8, scale=0.1)),
                                      c.init((np.abs(rand(8)) + 0.5).astype(np.float32))])
    t = c.node("Relu", [t])
    t = c.node("MaxPool", [t], kernel_shape=[2, 2], strides=[2, 2])
    t = c.node("Conv", [t, c.init(rand(16, 8, 3, 3, scale=0.2)), c.init(rand(16, scale=0.1))], strides=[2, 2])
    t = c.node("Relu", [t])
    t = c.node("Dropout", [t])
    t = c.node("Flatten", [t], axis=1)
    t = c.node("Gemm", [t, c.init(rand(10, 144, scale=0.1)), c.init(rand(10))], transB=1)
    c.finish(out_dir, c.node("LogSoftmax", [t], axis=1))

    # Unsupported operator (Erf): must give a typed error naming op, node and opset
    c = Case("unsupported_erf", [2, 3])
    c.finish(out_dir, c.node("Erf", ["x"]))
    print(f"wrote ONNX fixtures to {out_dir} (onnx {onnx.__version__}, onnxruntime {ort.__version__})")


if __name__ == "__main__":
    main(sys.argv[1])
