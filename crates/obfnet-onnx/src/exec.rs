//! One function per supported node kind; shapes are checked before burn sees them, so a bad
//! graph or input is an [`Error`], never a panic inside burn.

use std::collections::HashMap;

use burn::tensor::activation;
use burn::tensor::module::{avg_pool1d, avg_pool2d, conv1d, conv2d, max_pool1d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};
use onnx_ir::node::clip::ClipInput;
use onnx_ir::node::padding::{AutoPad, PaddingConfig1d, PaddingConfig2d};
use onnx_ir::node::reshape::ReshapeInput;
use onnx_ir::node::squeeze::SqueezeInput;
use onnx_ir::node::unsqueeze::UnsqueezeConfig;
use onnx_ir::{Argument, Node, RuntimeInputRef};

use crate::value::{FT, IT, MAX_RANK, Value, pad6};
use crate::{Error, Result};

type Env = HashMap<String, Value>;

fn unsupported(node: &Node, opset: i64, detail: impl Into<String>) -> Error {
    let (op, opset) = match node {
        Node::Custom(c) => (format!("{}::{}", c.domain, c.op_type), c.opset as i64),
        _ => (onnx_name(node), opset),
    };
    Error::UnsupportedOp {
        op,
        node: node.name().to_owned(),
        opset,
        detail: detail.into(),
    }
}

/// The ONNX operator name of a node (onnx-ir splits Conv/pools by rank and fuses Linear).
fn onnx_name(node: &Node) -> String {
    let t = node.node_type().to_string();
    match t.as_str() {
        "Conv1d" | "Conv2d" | "Conv3d" => "Conv".into(),
        "ConvTranspose1d" | "ConvTranspose2d" | "ConvTranspose3d" => "ConvTranspose".into(),
        "MaxPool1d" | "MaxPool2d" | "MaxPool3d" => "MaxPool".into(),
        "AveragePool1d" | "AveragePool2d" | "AveragePool3d" => "AveragePool".into(),
        "Linear" => "Gemm/MatMul".into(),
        _ => t,
    }
}

fn shape_err(node: &Node, message: impl Into<String>) -> Error {
    Error::Shape {
        node: node.name().to_owned(),
        message: message.into(),
    }
}

/// Rejects, at load time, every node (or node setting) [`run_node`] cannot execute exactly.
pub(crate) fn check_supported(node: &Node, opset: i64) -> Result<()> {
    let pad_ok = |p: &AutoPad| {
        matches!(
            p,
            AutoPad::NotSet | AutoPad::Valid | AutoPad::SameUpper | AutoPad::SameLower
        )
    };
    match node {
        Node::Add(_)
        | Node::Sub(_)
        | Node::Mul(_)
        | Node::Div(_)
        | Node::Relu(_)
        | Node::LeakyRelu(_)
        | Node::Sigmoid(_)
        | Node::Tanh(_)
        | Node::Clip(_)
        | Node::Softmax(_)
        | Node::LogSoftmax(_)
        | Node::Gemm(_)
        | Node::Linear(_)
        | Node::MatMul(_)
        | Node::GlobalAveragePool(_)
        | Node::BatchNormalization(_)
        | Node::Flatten(_)
        | Node::Reshape(_)
        | Node::Transpose(_)
        | Node::Shape(_)
        | Node::Gather(_)
        | Node::Unsqueeze(_)
        | Node::Squeeze(_)
        | Node::Concat(_)
        | Node::Constant(_)
        | Node::Cast(_)
        | Node::Identity(_) => Ok(()),
        Node::Dropout(d) => {
            if d.outputs.len() > 1 && !d.outputs[1].name.is_empty() {
                Err(unsupported(node, opset, "the mask output is used"))
            } else {
                Ok(())
            }
        }
        Node::Conv2d(c) => {
            let k = &c.config;
            if !pad_ok(&k.auto_pad) || k.groups == 0 || k.stride.contains(&0) || k.dilation.contains(&0) {
                return Err(unsupported(node, opset, format!("config {k:?}")));
            }
            Ok(())
        }
        Node::Conv1d(c) => {
            let k = &c.config;
            if !pad_ok(&k.auto_pad) || k.groups == 0 || k.stride == 0 || k.dilation == 0 {
                return Err(unsupported(node, opset, format!("config {k:?}")));
            }
            Ok(())
        }
        Node::MaxPool2d(p) => {
            let k = &p.config;
            if !pad_ok(&k.auto_pad)
                || k.strides.contains(&0)
                || k.dilation.contains(&0)
                || k.kernel_size.contains(&0)
            {
                return Err(unsupported(node, opset, format!("config {k:?}")));
            }
            if p.outputs.len() > 1 && !p.outputs[1].name.is_empty() {
                return Err(unsupported(node, opset, "the indices output is used"));
            }
            Ok(())
        }
        Node::MaxPool1d(p) => {
            let k = &p.config;
            if !pad_ok(&k.auto_pad) || k.stride == 0 || k.dilation == 0 || k.kernel_size == 0 || k.ceil_mode {
                return Err(unsupported(node, opset, format!("config {k:?}")));
            }
            Ok(())
        }
        Node::AveragePool2d(p) => {
            let k = &p.config;
            if !pad_ok(&k.auto_pad)
                || k.strides.contains(&0)
                || k.kernel_size.contains(&0)
                || k.dilation != [1, 1]
            {
                return Err(unsupported(
                    node,
                    opset,
                    format!("config {k:?} (dilation must be 1)"),
                ));
            }
            Ok(())
        }
        Node::AveragePool1d(p) => {
            let k = &p.config;
            if !pad_ok(&k.auto_pad) || k.stride == 0 || k.kernel_size == 0 || k.ceil_mode || k.dilation != 1 {
                return Err(unsupported(node, opset, format!("config {k:?}")));
            }
            Ok(())
        }
        _ => Err(unsupported(node, opset, "")),
    }
}

/// A graph constant (initializer or `Constant` output) as a run-time value.
pub(crate) fn const_value(data: TensorData, device: &Device) -> Value {
    if data.dtype().is_float() {
        Value::F(FT::from_data(data, device))
    } else {
        let dims = data.shape().to_vec();
        let v = data.convert::<i64>().try_to_vec::<i64>().unwrap_or_default();
        Value::I(IT { data: v, dims })
    }
}

/// The key of a static (name-less, embedded) input in the constants map.
pub(crate) fn static_key(node: &Node, i: usize) -> String {
    format!("\u{0}static:{}:{i}", node.name())
}

fn get(node: &Node, env: &Env, consts: &HashMap<String, Value>, i: usize) -> Result<Value> {
    let arg: &Argument = node
        .inputs()
        .get(i)
        .filter(|a| !a.is_optional() && (!a.name.is_empty() || a.is_static()))
        .ok_or_else(|| shape_err(node, format!("input {i} is missing")))?;
    if arg.name.is_empty() {
        return consts
            .get(&static_key(node, i))
            .cloned()
            .ok_or_else(|| shape_err(node, format!("static input {i} has no value")));
    }
    if let Some(v) = env.get(&arg.name).or_else(|| consts.get(&arg.name)) {
        return Ok(v.clone());
    }
    Err(shape_err(node, format!("input {:?} has no value", arg.name)))
}

fn has_input(node: &Node, i: usize) -> bool {
    node.inputs()
        .get(i)
        .is_some_and(|a| !a.is_optional() && (!a.name.is_empty() || a.is_static()))
}

fn float(v: Value, device: &Device) -> FT {
    match v {
        Value::F(f) => f,
        Value::I(i) => i.to_float(device),
    }
}

fn get_f(node: &Node, env: &Env, consts: &HashMap<String, Value>, i: usize, device: &Device) -> Result<FT> {
    Ok(float(get(node, env, consts, i)?, device))
}

fn get_ints(node: &Node, env: &Env, consts: &HashMap<String, Value>, i: usize) -> Result<Vec<i64>> {
    match get(node, env, consts, i)? {
        Value::I(v) => Ok(v.data),
        Value::F(f) => Ok(f
            .t
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v as i64)
            .collect()),
    }
}

fn runtime_ints(
    node: &Node,
    env: &Env,
    consts: &HashMap<String, Value>,
    r: &RuntimeInputRef,
) -> Result<Vec<i64>> {
    get_ints(node, env, consts, r.input_index)
}

fn runtime_scalar(node: &Node, env: &Env, consts: &HashMap<String, Value>, i: usize) -> Result<f64> {
    let v = match get(node, env, consts, i)? {
        Value::I(v) => v.data.first().map(|&x| x as f64),
        Value::F(f) => {
            f.t.into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .ok()
                .and_then(|v| v.first().copied())
        }
    };
    v.ok_or_else(|| shape_err(node, format!("input {i} is empty")))
}

/// Numpy broadcast of two shapes, or `None`.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let pa = pad_to(a, r);
    let pb = pad_to(b, r);
    pa.iter()
        .zip(&pb)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Some(x),
            (1, _) => Some(y),
            (_, 1) => Some(x),
            _ => None,
        })
        .collect()
}

fn pad_to(d: &[usize], r: usize) -> Vec<usize> {
    let mut v = vec![1; r - d.len()];
    v.extend_from_slice(d);
    v
}

#[derive(Clone, Copy)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
}

fn binary(node: &Node, a: Value, b: Value, op: Bin, device: &Device) -> Result<Value> {
    if let (Value::I(x), Value::I(y)) = (&a, &b)
        && (x.data.len() == y.data.len() || x.data.len() == 1 || y.data.len() == 1)
    {
        let n = x.data.len().max(y.data.len());
        let dims = if x.data.len() >= y.data.len() {
            x.dims.clone()
        } else {
            y.dims.clone()
        };
        let at = |v: &IT, i: usize| if v.data.len() == 1 { v.data[0] } else { v.data[i] };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (p, q) = (at(x, i), at(y, i));
            out.push(match op {
                Bin::Add => p.wrapping_add(q),
                Bin::Sub => p.wrapping_sub(q),
                Bin::Mul => p.wrapping_mul(q),
                Bin::Div => {
                    if q == 0 {
                        return Err(shape_err(node, "integer division by zero"));
                    }
                    p.div_euclid(q)
                }
            });
        }
        return Ok(Value::I(IT { data: out, dims }));
    }
    let (a, b) = (float(a, device), float(b, device));
    let (da, db) = (a.dims(), b.dims());
    let Some(out) = broadcast(&da, &db) else {
        return Err(shape_err(node, format!("cannot broadcast {da:?} with {db:?}")));
    };
    let t = match op {
        Bin::Add => a.t + b.t,
        Bin::Sub => a.t - b.t,
        Bin::Mul => a.t * b.t,
        Bin::Div => a.t / b.t,
    };
    Ok(Value::F(FT { t, rank: out.len() }))
}

/// `(begin, end)` padding of one spatial axis for `auto_pad` SAME_* (ONNX's formula).
fn same_pad(auto: &AutoPad, input: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let out = input.div_ceil(s);
    let need = ((out.saturating_sub(1)) * s + (k - 1) * d + 1).saturating_sub(input);
    match auto {
        AutoPad::SameLower => (need - need / 2, need / 2),
        _ => (need / 2, need - need / 2),
    }
}

fn pads2(
    auto: &AutoPad,
    explicit: &PaddingConfig2d,
    hw: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
) -> [(usize, usize); 2] {
    match auto {
        AutoPad::SameUpper | AutoPad::SameLower => [
            same_pad(auto, hw[0], k[0], s[0], d[0]),
            same_pad(auto, hw[1], k[1], s[1], d[1]),
        ],
        AutoPad::Valid => [(0, 0), (0, 0)],
        AutoPad::NotSet => {
            let (t, l, b, r) = explicit.as_tuple();
            [(t, b), (l, r)]
        }
    }
}

fn pads1(
    auto: &AutoPad,
    explicit: &PaddingConfig1d,
    len: usize,
    k: usize,
    s: usize,
    d: usize,
) -> (usize, usize) {
    match auto {
        AutoPad::SameUpper | AutoPad::SameLower => same_pad(auto, len, k, s, d),
        AutoPad::Valid => (0, 0),
        AutoPad::NotSet => match explicit {
            PaddingConfig1d::Valid => (0, 0),
            PaddingConfig1d::Explicit(a, b) => (*a, *b),
        },
    }
}

/// Output length of a window op, or an error when the window does not fit.
fn out_len(
    node: &Node,
    len: usize,
    pad: (usize, usize),
    k: usize,
    s: usize,
    d: usize,
    ceil: bool,
) -> Result<usize> {
    let span = (k - 1) * d + 1;
    let padded = len + pad.0 + pad.1;
    if padded < span {
        return Err(shape_err(
            node,
            format!("window {span} does not fit the padded length {padded}"),
        ));
    }
    Ok(if ceil {
        (padded - span).div_ceil(s) + 1
    } else {
        (padded - span) / s + 1
    })
}

fn need_rank(node: &Node, x: &FT, r: usize) -> Result<()> {
    if x.rank != r {
        return Err(shape_err(
            node,
            format!("expected a rank-{r} input, got {:?}", x.dims()),
        ));
    }
    Ok(())
}

fn norm_axis(node: &Node, a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if !(0..r).contains(&v) {
        return Err(shape_err(node, format!("axis {a} out of range for rank {rank}")));
    }
    Ok(v as usize)
}

/// Runs one node; returns its first output's value (`None` for nodes whose output is a constant
/// known at load time).
pub(crate) fn run_node(
    node: &Node,
    env: &Env,
    consts: &HashMap<String, Value>,
    opset: i64,
    device: &Device,
) -> Result<Option<Value>> {
    let dev = device.clone();
    let g = |i| get(node, env, consts, i);
    let gf = |i| get_f(node, env, consts, i, &dev);
    let out = match node {
        Node::Add(_) => binary(node, g(0)?, g(1)?, Bin::Add, &dev)?,
        Node::Sub(_) => binary(node, g(0)?, g(1)?, Bin::Sub, &dev)?,
        Node::Mul(_) => binary(node, g(0)?, g(1)?, Bin::Mul, &dev)?,
        Node::Div(_) => binary(node, g(0)?, g(1)?, Bin::Div, &dev)?,
        Node::Relu(_) => map_f(gf(0)?, activation::relu),
        Node::LeakyRelu(n) => {
            let a = n.config.alpha;
            map_f(gf(0)?, |t| activation::leaky_relu(t, a))
        }
        Node::Sigmoid(_) => map_f(gf(0)?, activation::sigmoid),
        Node::Tanh(_) => map_f(gf(0)?, |t| t.tanh()),
        Node::Clip(n) => {
            let bound = |b: &Option<ClipInput>| -> Result<Option<f64>> {
                match b {
                    None => Ok(None),
                    Some(ClipInput::Static(v)) => Ok(Some(*v)),
                    Some(ClipInput::Runtime(r)) => runtime_scalar(node, env, consts, r.input_index).map(Some),
                }
            };
            let (lo, hi) = (bound(&n.config.min)?, bound(&n.config.max)?);
            let mut x = gf(0)?;
            if let Some(lo) = lo {
                x.t = x.t.clamp_min(lo);
            }
            if let Some(hi) = hi {
                x.t = x.t.clamp_max(hi);
            }
            Value::F(x)
        }
        Node::Softmax(n) => {
            let x = gf(0)?;
            let ax = x.ax(n.config.axis.min(x.rank.saturating_sub(1)));
            map_f(x, |t| activation::softmax(t, ax))
        }
        Node::LogSoftmax(n) => {
            let x = gf(0)?;
            let ax = x.ax(n.config.axis.min(x.rank.saturating_sub(1)));
            map_f(x, |t| activation::log_softmax(t, ax))
        }
        Node::Conv2d(n) => {
            let c = &n.config;
            let x = gf(0)?;
            let w = gf(1)?;
            need_rank(node, &x, 4)?;
            need_rank(node, &w, 4)?;
            let (xd, wd) = (x.dims(), w.dims());
            if xd[1] != wd[1] * c.groups || wd[0] % c.groups != 0 || [wd[2], wd[3]] != c.kernel_size {
                return Err(shape_err(
                    node,
                    format!("input {xd:?} does not fit weight {wd:?} with {} groups", c.groups),
                ));
            }
            let pads = pads2(
                &c.auto_pad,
                &c.padding,
                [xd[2], xd[3]],
                c.kernel_size,
                c.stride,
                c.dilation,
            );
            for i in 0..2 {
                out_len(
                    node,
                    xd[2 + i],
                    pads[i],
                    c.kernel_size[i],
                    c.stride[i],
                    c.dilation[i],
                    false,
                )?;
            }
            let bias = bias_of(node, env, consts, 2, wd[0], &dev)?;
            let y = conv2d(
                x.as_rank::<4>(),
                w.as_rank::<4>(),
                bias,
                ConvOptions::new_with_padding(c.stride, pads, c.dilation, c.groups),
            );
            Value::F(FT::from_tensor(y))
        }
        Node::Conv1d(n) => {
            let c = &n.config;
            let x = gf(0)?;
            let w = gf(1)?;
            need_rank(node, &x, 3)?;
            need_rank(node, &w, 3)?;
            let (xd, wd) = (x.dims(), w.dims());
            if xd[1] != wd[1] * c.groups || wd[0] % c.groups != 0 || wd[2] != c.kernel_size {
                return Err(shape_err(
                    node,
                    format!("input {xd:?} does not fit weight {wd:?} with {} groups", c.groups),
                ));
            }
            let pad = pads1(
                &c.auto_pad,
                &c.padding,
                xd[2],
                c.kernel_size,
                c.stride,
                c.dilation,
            );
            out_len(node, xd[2], pad, c.kernel_size, c.stride, c.dilation, false)?;
            let bias = bias_of(node, env, consts, 2, wd[0], &dev)?;
            let y = conv1d(
                x.as_rank::<3>(),
                w.as_rank::<3>(),
                bias,
                ConvOptions::new_with_padding([c.stride], [pad], [c.dilation], c.groups),
            );
            Value::F(FT::from_tensor(y))
        }
        Node::MaxPool2d(n) => {
            let c = &n.config;
            let x = gf(0)?;
            need_rank(node, &x, 4)?;
            let xd = x.dims();
            let pads = pads2(
                &c.auto_pad,
                &c.padding,
                [xd[2], xd[3]],
                c.kernel_size,
                c.strides,
                c.dilation,
            );
            for i in 0..2 {
                out_len(
                    node,
                    xd[2 + i],
                    pads[i],
                    c.kernel_size[i],
                    c.strides[i],
                    c.dilation[i],
                    c.ceil_mode,
                )?;
            }
            let opts = MaxPoolOptions::new(c.kernel_size)
                .with_stride(c.strides)
                .with_padding_pairs(pads)
                .with_dilation(c.dilation)
                .with_ceil_mode(c.ceil_mode);
            Value::F(FT::from_tensor(max_pool2d(x.as_rank::<4>(), opts)))
        }
        Node::MaxPool1d(n) => {
            let c = &n.config;
            let x = gf(0)?;
            need_rank(node, &x, 3)?;
            let xd = x.dims();
            let pad = pads1(
                &c.auto_pad,
                &c.padding,
                xd[2],
                c.kernel_size,
                c.stride,
                c.dilation,
            );
            out_len(node, xd[2], pad, c.kernel_size, c.stride, c.dilation, false)?;
            let opts = MaxPoolOptions::new([c.kernel_size])
                .with_stride([c.stride])
                .with_padding_pairs([pad])
                .with_dilation([c.dilation]);
            Value::F(FT::from_tensor(max_pool1d(x.as_rank::<3>(), opts)))
        }
        Node::AveragePool2d(n) => {
            let c = &n.config;
            let x = gf(0)?;
            need_rank(node, &x, 4)?;
            let xd = x.dims();
            let pads = pads2(
                &c.auto_pad,
                &c.padding,
                [xd[2], xd[3]],
                c.kernel_size,
                c.strides,
                [1, 1],
            );
            for i in 0..2 {
                out_len(
                    node,
                    xd[2 + i],
                    pads[i],
                    c.kernel_size[i],
                    c.strides[i],
                    1,
                    c.ceil_mode,
                )?;
            }
            let opts = AvgPoolOptions::new(c.kernel_size)
                .with_stride(c.strides)
                .with_padding_pairs(pads)
                .with_count_include_pad(c.count_include_pad)
                .with_ceil_mode(c.ceil_mode);
            Value::F(FT::from_tensor(avg_pool2d(x.as_rank::<4>(), opts)))
        }
        Node::AveragePool1d(n) => {
            let c = &n.config;
            let x = gf(0)?;
            need_rank(node, &x, 3)?;
            let xd = x.dims();
            let pad = pads1(&c.auto_pad, &c.padding, xd[2], c.kernel_size, c.stride, 1);
            out_len(node, xd[2], pad, c.kernel_size, c.stride, 1, false)?;
            let opts = AvgPoolOptions::new([c.kernel_size])
                .with_stride([c.stride])
                .with_padding_pairs([pad])
                .with_count_include_pad(c.count_include_pad);
            Value::F(FT::from_tensor(avg_pool1d(x.as_rank::<3>(), opts)))
        }
        Node::GlobalAveragePool(_) => {
            let x = gf(0)?;
            if x.rank < 3 {
                return Err(shape_err(
                    node,
                    format!("expected [N, C, ...], got {:?}", x.dims()),
                ));
            }
            let mut t = x.t;
            for a in 2..x.rank {
                t = t.mean_dim(MAX_RANK - x.rank + a);
            }
            Value::F(FT { t, rank: x.rank })
        }
        Node::BatchNormalization(n) => {
            let eps = match &n.config {
                onnx_ir::node::batch_norm::BatchNormConfig::Static(s) => s.epsilon,
                onnx_ir::node::batch_norm::BatchNormConfig::Runtime(r) => r.epsilon,
            };
            let x = gf(0)?;
            let xd = x.dims();
            if x.rank < 2 {
                return Err(shape_err(node, format!("expected [N, C, ...], got {xd:?}")));
            }
            let ch = xd[1];
            let mut shape = vec![1usize; x.rank];
            shape[1] = ch;
            let mut p = Vec::with_capacity(4);
            for i in 1..5 {
                let v = gf(i)?;
                if v.dims().iter().product::<usize>() != ch {
                    return Err(shape_err(
                        node,
                        format!("parameter {i} has shape {:?}, {ch} channels", v.dims()),
                    ));
                }
                p.push(v.reshape(&shape).t);
            }
            let [scale, bias, mean, var]: [Tensor<MAX_RANK>; 4] = p
                .try_into()
                .map_err(|_| shape_err(node, "four parameters expected"))?;
            let inv = var.add_scalar(eps).sqrt().recip() * scale;
            Value::F(FT {
                t: (x.t - mean) * inv + bias,
                rank: x.rank,
            })
        }
        Node::Flatten(n) => {
            let x = gf(0)?;
            let d = x.dims();
            let axis = n.config.axis.min(d.len());
            let a: usize = d[..axis].iter().product();
            let b: usize = d[axis..].iter().product();
            Value::F(x.reshape(&[a, b]))
        }
        Node::Reshape(n) => {
            let x = g(0)?;
            let spec = match &n.config.shape {
                ReshapeInput::Static(s) => s.clone(),
                ReshapeInput::Runtime(r) => runtime_ints(node, env, consts, r)?,
            };
            let d = value_dims(&x);
            let target = resolve_reshape(node, &d, &spec)?;
            reshape_value(x, &target)?
        }
        Node::Transpose(n) => {
            let x = gf(0)?;
            let r = x.rank;
            let perm: Vec<usize> = if n.config.perm.is_empty() {
                (0..r).rev().collect()
            } else {
                n.config
                    .perm
                    .iter()
                    .map(|&p| norm_axis(node, p, r))
                    .collect::<Result<_>>()?
            };
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted != (0..r).collect::<Vec<_>>() {
                return Err(shape_err(
                    node,
                    format!("perm {perm:?} is not a permutation of rank {r}"),
                ));
            }
            let off = MAX_RANK - r;
            let mut full = [0usize; MAX_RANK];
            for (i, f) in full.iter_mut().enumerate() {
                *f = if i < off { i } else { off + perm[i - off] };
            }
            Value::F(FT {
                t: x.t.permute(full),
                rank: r,
            })
        }
        Node::Gemm(n) => {
            let c = &n.config;
            let a = gf(0)?;
            let b = gf(1)?;
            need_rank(node, &a, 2)?;
            need_rank(node, &b, 2)?;
            let mut a2 = a.as_rank::<2>();
            let mut b2 = b.as_rank::<2>();
            if c.trans_a != 0 {
                a2 = a2.transpose();
            }
            if c.trans_b != 0 {
                b2 = b2.transpose();
            }
            let (ad, bd) = (a2.dims(), b2.dims());
            if ad[1] != bd[0] {
                return Err(shape_err(node, format!("cannot multiply {ad:?} by {bd:?}")));
            }
            let mut y = a2.matmul(b2);
            if c.alpha != 1.0 {
                y = y.mul_scalar(c.alpha);
            }
            let y = Value::F(FT::from_tensor(y));
            if has_input(node, 2) {
                let mut cc = gf(2)?;
                if c.beta != 1.0 {
                    cc.t = cc.t.mul_scalar(c.beta);
                }
                binary(node, y, Value::F(cc), Bin::Add, &dev)?
            } else {
                y
            }
        }
        Node::Linear(n) => {
            let x = gf(0)?;
            let w = gf(1)?;
            need_rank(node, &w, 2)?;
            let mut w2 = w.as_rank::<2>();
            if n.config.transpose_weight {
                w2 = w2.transpose();
            }
            let [k, m] = w2.dims();
            let d = x.dims();
            if d.last() != Some(&k) {
                return Err(shape_err(
                    node,
                    format!("input {d:?} does not fit weight [{k}, {m}]"),
                ));
            }
            let lead: usize = d[..d.len() - 1].iter().product();
            let mut y = x.reshape(&[lead, k]).as_rank::<2>().matmul(w2);
            if has_input(node, 2) {
                let b = gf(2)?;
                if b.dims().iter().product::<usize>() != m {
                    return Err(shape_err(
                        node,
                        format!("bias {:?} does not fit {m} outputs", b.dims()),
                    ));
                }
                y = y + b.reshape(&[1, m]).as_rank::<2>();
            }
            let mut od = d[..d.len() - 1].to_vec();
            od.push(m);
            Value::F(FT::from_tensor(y).reshape(&od))
        }
        Node::MatMul(_) => matmul(node, gf(0)?, gf(1)?)?,
        // inference: Dropout is the identity whatever its ratio (checked: no mask output used)
        Node::Dropout(_) => g(0)?,
        Node::Identity(_) => g(0)?,
        Node::Shape(n) => {
            let d = value_dims(&g(0)?);
            let (s, e) = (n.config.start.min(d.len()), n.config.end.min(d.len()));
            Value::I(IT::vec(d[s..e.max(s)].iter().map(|&v| v as i64).collect()))
        }
        Node::Gather(n) => {
            let x = g(0)?;
            let idx = match g(1)? {
                Value::I(i) => i,
                Value::F(f) => {
                    let dims = f.dims();
                    IT {
                        data: f
                            .t
                            .into_data()
                            .convert::<i64>()
                            .try_to_vec::<i64>()
                            .unwrap_or_default(),
                        dims,
                    }
                }
            };
            gather(node, x, idx, n.config.axis, &dev)?
        }
        Node::Unsqueeze(n) => {
            let x = g(0)?;
            let axes = match &n.config {
                UnsqueezeConfig::Static(a) => a.clone(),
                UnsqueezeConfig::Runtime(r) => runtime_ints(node, env, consts, r)?,
            };
            let d = value_dims(&x);
            let out_rank = d.len() + axes.len();
            let mut axes = axes
                .iter()
                .map(|&a| norm_axis(node, a, out_rank))
                .collect::<Result<Vec<_>>>()?;
            axes.sort_unstable();
            let mut nd = d.clone();
            for a in axes {
                nd.insert(a.min(nd.len()), 1);
            }
            reshape_value(x, &nd)?
        }
        Node::Squeeze(n) => {
            let x = g(0)?;
            let d = value_dims(&x);
            let axes = match &n.config.axes {
                None => d
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v == 1)
                    .map(|(i, _)| i as i64)
                    .collect(),
                Some(SqueezeInput::Static(a)) => a.clone(),
                Some(SqueezeInput::Runtime(r)) => runtime_ints(node, env, consts, r)?,
            };
            let axes = axes
                .iter()
                .map(|&a| norm_axis(node, a, d.len()))
                .collect::<Result<Vec<_>>>()?;
            if axes.iter().any(|&a| d[a] != 1) {
                return Err(shape_err(node, format!("cannot squeeze axes {axes:?} of {d:?}")));
            }
            let nd: Vec<usize> = d
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, v)| *v)
                .collect();
            reshape_value(x, &nd)?
        }
        Node::Concat(n) => {
            let vals = (0..node.inputs().len()).map(g).collect::<Result<Vec<_>>>()?;
            concat(node, vals, n.config.axis, &dev)?
        }
        Node::Constant(_) => return Ok(None),
        Node::Cast(n) => {
            let x = g(0)?;
            if n.config.to.is_float() {
                Value::F(float(x, &dev))
            } else {
                match x {
                    Value::I(i) => Value::I(i),
                    Value::F(f) => {
                        let dims = f.dims();
                        let data: Vec<i64> =
                            f.t.into_data()
                                .convert::<f32>()
                                .try_to_vec::<f32>()
                                .unwrap_or_default()
                                .into_iter()
                                .map(|v| v as i64)
                                .collect();
                        Value::I(IT { data, dims })
                    }
                }
            }
        }
        _ => return Err(unsupported(node, opset, "")),
    };
    if let Value::F(f) = &out
        && (f.rank > MAX_RANK)
    {
        return Err(shape_err(node, "rank above 6"));
    }
    Ok(Some(out))
}

fn map_f(x: FT, f: impl FnOnce(Tensor<MAX_RANK>) -> Tensor<MAX_RANK>) -> Value {
    Value::F(FT {
        t: f(x.t),
        rank: x.rank,
    })
}

fn bias_of(
    node: &Node,
    env: &Env,
    consts: &HashMap<String, Value>,
    i: usize,
    n: usize,
    dev: &Device,
) -> Result<Option<Tensor<1>>> {
    if !has_input(node, i) {
        return Ok(None);
    }
    let b = get_f(node, env, consts, i, dev)?;
    if b.dims().iter().product::<usize>() != n {
        return Err(shape_err(
            node,
            format!("bias {:?} does not fit {n} channels", b.dims()),
        ));
    }
    Ok(Some(b.reshape(&[n]).as_rank::<1>()))
}

fn value_dims(v: &Value) -> Vec<usize> {
    match v {
        Value::F(f) => f.dims(),
        Value::I(i) => i.dims.clone(),
    }
}

fn reshape_value(v: Value, dims: &[usize]) -> Result<Value> {
    Ok(match v {
        Value::F(f) => {
            if dims.len() > MAX_RANK {
                return Err(Error::Shape {
                    node: "reshape".into(),
                    message: format!("rank {} above {MAX_RANK}", dims.len()),
                });
            }
            Value::F(f.reshape(dims))
        }
        Value::I(i) => Value::I(IT {
            data: i.data,
            dims: dims.to_vec(),
        }),
    })
}

fn resolve_reshape(node: &Node, d: &[usize], spec: &[i64]) -> Result<Vec<usize>> {
    let total: usize = d.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &s) in spec.iter().enumerate() {
        match s {
            0 => out.push(
                *d.get(i)
                    .ok_or_else(|| shape_err(node, format!("0 at axis {i} of {spec:?} for {d:?}")))?,
            ),
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            s if s > 0 => out.push(s as usize),
            _ => return Err(shape_err(node, format!("invalid shape {spec:?}"))),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(shape_err(node, format!("cannot reshape {d:?} to {spec:?}")));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total || out.len() > MAX_RANK {
        return Err(shape_err(node, format!("cannot reshape {d:?} to {spec:?}")));
    }
    Ok(out)
}

fn matmul(node: &Node, a: FT, b: FT) -> Result<Value> {
    let (mut da, mut db) = (a.dims(), b.dims());
    let (va, vb) = (da.len() == 1, db.len() == 1);
    if va {
        da.insert(0, 1);
    }
    if vb {
        db.push(1);
    }
    if da.len() < 2 || db.len() < 2 || da[da.len() - 1] != db[db.len() - 2] {
        return Err(shape_err(
            node,
            format!("cannot multiply {:?} by {:?}", a.dims(), b.dims()),
        ));
    }
    let (m, k, n) = (da[da.len() - 2], da[da.len() - 1], db[db.len() - 1]);
    let Some(batch) = broadcast(&da[..da.len() - 2], &db[..db.len() - 2]) else {
        return Err(shape_err(
            node,
            format!("batch dims of {da:?} and {db:?} do not broadcast"),
        ));
    };
    let mut fa = batch.clone();
    fa.extend([m, k]);
    let mut fb = batch.clone();
    fb.extend([k, n]);
    if fa.len() > MAX_RANK {
        return Err(shape_err(node, "rank above 6"));
    }
    let ta = a.reshape(&da).t.expand(pad6(&fa));
    let tb = b.reshape(&db).t.expand(pad6(&fb));
    let mut od = batch;
    od.extend([m, n]);
    let y = FT {
        t: ta.matmul(tb),
        rank: od.len(),
    };
    let mut fin = od.clone();
    if vb {
        fin.pop();
    }
    if va {
        fin.remove(fin.len() - if vb { 1 } else { 2 });
    }
    Ok(Value::F(y.reshape(&fin)))
}

fn gather(node: &Node, x: Value, idx: IT, axis: usize, dev: &Device) -> Result<Value> {
    let d = value_dims(&x);
    if axis >= d.len() {
        return Err(shape_err(node, format!("axis {axis} out of range for {d:?}")));
    }
    let n = d[axis] as i64;
    let mut ids = Vec::with_capacity(idx.data.len());
    for &i in &idx.data {
        let j = if i < 0 { i + n } else { i };
        if !(0..n).contains(&j) {
            return Err(shape_err(
                node,
                format!("index {i} out of range for axis {axis} of {d:?}"),
            ));
        }
        ids.push(j as usize);
    }
    let mut od = d[..axis].to_vec();
    od.extend(&idx.dims);
    od.extend(&d[axis + 1..]);
    match x {
        Value::I(v) => {
            let outer: usize = d[..axis].iter().product();
            let inner: usize = d[axis + 1..].iter().product();
            let mut out = Vec::new();
            for o in 0..outer {
                for &j in &ids {
                    let base = (o * d[axis] + j) * inner;
                    out.extend_from_slice(&v.data[base..base + inner]);
                }
            }
            Ok(Value::I(IT { data: out, dims: od }))
        }
        Value::F(f) => {
            if od.len() > MAX_RANK {
                return Err(shape_err(node, "rank above 6"));
            }
            let it: Tensor<1, Int> = Tensor::from_data(
                TensorData::new(ids.iter().map(|&v| v as i64).collect::<Vec<_>>(), [ids.len()]),
                dev,
            );
            let ax = f.ax(axis);
            let t = f.t.select(ax, it);
            Ok(Value::F(FT { t, rank: d.len() }.reshape(&od)))
        }
    }
}

fn concat(node: &Node, vals: Vec<Value>, axis: usize, dev: &Device) -> Result<Value> {
    if vals.is_empty() {
        return Err(shape_err(node, "no inputs"));
    }
    if vals.iter().all(|v| matches!(v, Value::I(i) if i.dims.len() <= 1)) && axis == 0 {
        let data: Vec<i64> = vals
            .into_iter()
            .flat_map(|v| match v {
                Value::I(i) => i.data,
                Value::F(_) => Vec::new(),
            })
            .collect();
        return Ok(Value::I(IT::vec(data)));
    }
    let fs: Vec<FT> = vals.into_iter().map(|v| float(v, dev)).collect();
    let d0 = fs[0].dims();
    for f in &fs {
        let d = f.dims();
        let ok = d.len() == d0.len()
            && axis < d.len()
            && d.iter()
                .zip(&d0)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !ok {
            return Err(shape_err(
                node,
                format!("cannot concatenate {d0:?} and {d:?} on axis {axis}"),
            ));
        }
    }
    let rank = fs[0].rank;
    let ax = fs[0].ax(axis);
    Ok(Value::F(FT {
        t: Tensor::cat(fs.into_iter().map(|f| f.t).collect(), ax),
        rank,
    }))
}
