use burn::prelude::*;

use crate::data::{Dataset, to_vec};
use crate::lenet::LeNet;
use crate::obf::ObfStack;
use crate::server_model::ServerModel;
use crate::{Error, Result};

const EVAL_CHUNK: usize = 500;

pub(crate) fn argmax_labels(logits: Tensor<2>) -> Result<Vec<i64>> {
    logits
        .argmax(1)
        .into_data()
        .try_into_vec_as::<i64>()
        .map_err(|e| Error::TensorRead {
            what: "the predicted labels",
            reason: format!("{e:?}"),
        })
}

fn check_lenet_input(model: &LeNet, data: &Dataset) -> Result<()> {
    if model.input_shape() != (data.rows, data.cols) {
        return Err(Error::InputShape {
            expected_by: "the server model",
            expected: model.input_shape(),
            found_in: "the data",
            found: (data.rows, data.cols),
        });
    }
    Ok(())
}

fn check_stack_input(stack: &ObfStack, data: &Dataset) -> Result<()> {
    if stack.image_size() != (data.rows, data.cols) {
        return Err(Error::InputShape {
            expected_by: "the obfuscators",
            expected: stack.image_size(),
            found_in: "the data",
            found: (data.rows, data.cols),
        });
    }
    Ok(())
}

/// Accuracy of `forward` (logits of a `[n, d]` batch) on the raw samples of `data`.
fn accuracy_with(data: &Dataset, forward: impl Fn(Tensor<2>) -> Result<Tensor<2>>) -> Result<f64> {
    let mut correct = 0usize;
    for start in (0..data.len()).step_by(EVAL_CHUNK) {
        let x = data.slice(start, EVAL_CHUNK).inner();
        let pred = argmax_labels(forward(x)?)?;
        correct += pred
            .iter()
            .zip(&data.labels[start..])
            .filter(|&(&p, &l)| p == i64::from(l))
            .count();
    }
    Ok(correct as f64 / data.len() as f64)
}

/// Accuracy of `forward(obf_k(x))` on `data` for each net of `stack`.
fn obfuscated_accuracies_with(
    stack: &ObfStack,
    data: &Dataset,
    forward: impl Fn(Tensor<2>) -> Result<Tensor<2>>,
) -> Result<Vec<f64>> {
    check_stack_input(stack, data)?;
    let stack = stack.valid();
    let k = stack.k();
    let mut correct = vec![0usize; k];
    for start in (0..data.len()).step_by(EVAL_CHUNK) {
        let x = data.slice(start, EVAL_CHUNK).inner();
        let [b, d] = x.dims();
        let obf = stack.forward_all(x).reshape([k * b, d]);
        let pred = argmax_labels(forward(obf)?)?;
        for (net, preds) in pred.chunks(b).enumerate() {
            correct[net] += preds
                .iter()
                .zip(&data.labels[start..start + b])
                .filter(|&(&p, &l)| p == i64::from(l))
                .count();
        }
    }
    Ok(correct
        .into_iter()
        .map(|c| c as f64 / data.len() as f64)
        .collect())
}

fn check_server_input(server: &ServerModel, data: &Dataset) -> Result<()> {
    if server.input_shape() != (data.rows, data.cols) {
        return Err(Error::InputShape {
            expected_by: "the server model",
            expected: server.input_shape(),
            found_in: "the data",
            found: (data.rows, data.cols),
        });
    }
    Ok(())
}

/// Accuracy of `model` on the raw (unobfuscated) samples of `data`.
pub fn accuracy(model: &LeNet, data: &Dataset) -> Result<f64> {
    check_lenet_input(model, data)?;
    let model = model.valid();
    accuracy_with(data, |x| Ok(model.forward(x)))
}

/// Accuracy of `model(obf_k(x))` on `data` for each of the K nets of `stack`.
pub fn obfuscated_accuracies(model: &LeNet, stack: &ObfStack, data: &Dataset) -> Result<Vec<f64>> {
    check_lenet_input(model, data)?;
    let model = model.valid();
    obfuscated_accuracies_with(stack, data, |x| Ok(model.forward(x)))
}

/// [`accuracy`] for either kind of server model (a LeNet or an ONNX graph).
///
/// # Errors
/// [`Error::InputShape`] if the data does not fit the model; [`Error::Onnx`] if the graph fails.
pub fn server_accuracy(server: &ServerModel, data: &Dataset) -> Result<f64> {
    if let ServerModel::LeNet(m) = server {
        return accuracy(m, data);
    }
    check_server_input(server, data)?;
    accuracy_with(data, |x| server.forward_eval(x))
}

/// [`obfuscated_accuracies`] for either kind of server model.
///
/// # Errors
/// [`Error::InputShape`] if the data does not fit the model or the obfuscators.
pub fn server_obfuscated_accuracies(
    server: &ServerModel,
    stack: &ObfStack,
    data: &Dataset,
) -> Result<Vec<f64>> {
    if let ServerModel::LeNet(m) = server {
        return obfuscated_accuracies(m, stack, data);
    }
    check_server_input(server, data)?;
    obfuscated_accuracies_with(stack, data, |x| server.forward_eval(x))
}

/// The obfuscated versions of the first `n` samples of `data` under each net, as host vectors
/// `[net][sample][pixel]` in the model's (normalised) input space.
pub fn obfuscate_samples(stack: &ObfStack, data: &Dataset, n: usize) -> Result<Vec<Vec<Vec<f32>>>> {
    check_stack_input(stack, data)?;
    let stack = stack.valid();
    let x = data.slice(0, n).inner();
    let [b, d] = x.dims();
    let k = stack.k();
    let flat = to_vec(stack.forward_all(x).reshape([k * b, d]))?;
    Ok(flat
        .chunks(b * d)
        .map(|net| net.chunks(d).map(<[f32]>::to_vec).collect())
        .collect())
}

/// Accuracy of `model` on samples given as host vectors in the model's (normalised) input space:
/// `inputs` holds `labels.len()` samples of `rows · cols` values each (784 for 28×28), row after
/// row.
///
/// This is how inputs produced outside the engine (the edge runtime, a wire encoding, an
/// attack) are scored by the frozen server model.
///
/// # Errors
///
/// [`Error::SampleCount`] if `inputs` is not `labels.len() × rows · cols` values or is empty.
pub fn accuracy_on_inputs(model: &LeNet, inputs: &[f32], labels: &[u8]) -> Result<f64> {
    let model = model.valid();
    accuracy_on_inputs_with(model.input_shape(), inputs, labels, |x| Ok(model.forward(x)))
}

/// [`accuracy_on_inputs`] for either kind of server model.
///
/// # Errors
/// As [`accuracy_on_inputs`]; [`Error::Onnx`] if the graph fails.
pub fn server_accuracy_on_inputs(server: &ServerModel, inputs: &[f32], labels: &[u8]) -> Result<f64> {
    if let ServerModel::LeNet(m) = server {
        return accuracy_on_inputs(m, inputs, labels);
    }
    accuracy_on_inputs_with(server.input_shape(), inputs, labels, |x| server.forward_eval(x))
}

fn accuracy_on_inputs_with(
    (rows, cols): (usize, usize),
    inputs: &[f32],
    labels: &[u8],
    forward: impl Fn(Tensor<2>) -> Result<Tensor<2>>,
) -> Result<f64> {
    let d = rows * cols;
    if labels.is_empty() || inputs.len() != labels.len() * d {
        return Err(Error::SampleCount {
            samples: labels.len(),
            per_sample: d,
            found: inputs.len(),
        });
    }
    let device = crate::default_device().inner();
    let mut correct = 0usize;
    for (x, y) in inputs.chunks(EVAL_CHUNK * d).zip(labels.chunks(EVAL_CHUNK)) {
        let t = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [y.len(), d]), &device);
        let pred = argmax_labels(forward(t)?)?;
        correct += pred.iter().zip(y).filter(|&(&p, &l)| p == i64::from(l)).count();
    }
    Ok(correct as f64 / labels.len() as f64)
}
