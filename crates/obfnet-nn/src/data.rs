use burn::prelude::*;
use obfnet_core::Normalisation;
use obfnet_data::LabeledImages;

use crate::{Error, Result};

/// The input normalisation every model here is trained with: `x = (pixel / 255 − 0.1307) / 0.3081`
/// (MNIST's mean and standard deviation). It is written into every bundle's manifest.
pub const NORMALISATION: Normalisation = Normalisation::MNIST;

/// A labelled image split held in memory as one normalised tensor, ready for training.
///
/// # Shapes
/// `x`: `[n, rows * cols]` (f32, normalised), `y`: `[n]` (int).
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Normalised images, flattened, on the plain (non-autodiff) device.
    pub x: Tensor<2>,
    /// Labels.
    pub y: Tensor<1, Int>,
    /// Labels on the host, for evaluation.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl Dataset {
    /// Normalises `images` with [`NORMALISATION`] and loads them onto `device` (its plain,
    /// non-autodiff side).
    pub fn from_images(images: &LabeledImages, device: &Device) -> Result<Dataset> {
        if images.is_empty() {
            return Err(Error::EmptySplit { what: "the split" });
        }
        let n = images.len();
        let d = images.rows * images.cols;
        let x: Vec<f32> = images.pixels.iter().map(|&p| NORMALISATION.apply(p)).collect();
        let y: Vec<i64> = images.labels.iter().map(|&l| i64::from(l)).collect();
        let device = device.clone().inner();
        Ok(Dataset {
            x: Tensor::from_data(TensorData::new(x, [n, d]), &device),
            y: Tensor::from_data(TensorData::new(y, [n]), &device),
            labels: images.labels.clone(),
            rows: images.rows,
            cols: images.cols,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty (never true for a constructed `Dataset`).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }

    /// The rows `indices` of `x` and `y`.
    pub fn batch(&self, indices: &[usize]) -> (Tensor<2>, Tensor<1, Int>) {
        let idx = index_tensor(indices, &self.x.device());
        (
            self.x.clone().select(0, idx.clone()),
            self.y.clone().select(0, idx),
        )
    }

    /// Samples `start..start+len` of `x` (clamped to the split).
    pub fn slice(&self, start: usize, len: usize) -> Tensor<2> {
        let end = (start + len).min(self.len());
        self.x.clone().slice([start..end, 0..self.dim()])
    }
}

pub(crate) fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [indices.len()]), device)
}

/// Reads a float tensor back to the host.
pub(crate) fn to_vec(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::TensorRead {
            what: "a float tensor",
            reason: format!("{e:?}"),
        })
}
