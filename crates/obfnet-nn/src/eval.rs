use burn::prelude::*;

use crate::data::{Dataset, to_vec};
use crate::lenet::LeNet;
use crate::obf::ObfStack;
use crate::{Error, Result};

const EVAL_CHUNK: usize = 500;

fn argmax_labels(logits: Tensor<2>) -> Result<Vec<i64>> {
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

/// Accuracy of `model` on the raw (unobfuscated) samples of `data`.
pub fn accuracy(model: &LeNet, data: &Dataset) -> Result<f64> {
    check_lenet_input(model, data)?;
    let model = model.valid();
    let mut correct = 0usize;
    for start in (0..data.len()).step_by(EVAL_CHUNK) {
        let x = data.slice(start, EVAL_CHUNK).inner();
        let pred = argmax_labels(model.forward(x))?;
        correct += pred
            .iter()
            .zip(&data.labels[start..])
            .filter(|&(&p, &l)| p == i64::from(l))
            .count();
    }
    Ok(correct as f64 / data.len() as f64)
}

/// Accuracy of `model(obf_k(x))` on `data` for each of the K nets of `stack`.
pub fn obfuscated_accuracies(model: &LeNet, stack: &ObfStack, data: &Dataset) -> Result<Vec<f64>> {
    check_lenet_input(model, data)?;
    check_stack_input(stack, data)?;
    let model = model.valid();
    let stack = stack.valid();
    let k = stack.k();
    let mut correct = vec![0usize; k];
    for start in (0..data.len()).step_by(EVAL_CHUNK) {
        let x = data.slice(start, EVAL_CHUNK).inner();
        let [b, d] = x.dims();
        let obf = stack.forward_all(x).reshape([k * b, d]);
        let pred = argmax_labels(model.forward(obf))?;
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
    let (rows, cols) = model.input_shape();
    let d = rows * cols;
    if labels.is_empty() || inputs.len() != labels.len() * d {
        return Err(Error::SampleCount {
            samples: labels.len(),
            per_sample: d,
            found: inputs.len(),
        });
    }
    let model = model.valid();
    let device = crate::default_device().inner();
    let mut correct = 0usize;
    for (x, y) in inputs.chunks(EVAL_CHUNK * d).zip(labels.chunks(EVAL_CHUNK)) {
        let t = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [y.len(), d]), &device);
        let pred = argmax_labels(model.forward(t))?;
        correct += pred.iter().zip(y).filter(|&(&p, &l)| p == i64::from(l)).count();
    }
    Ok(correct as f64 / labels.len() as f64)
}
