//! Run-time values: float tensors of any rank ≤ [`MAX_RANK`] (stored padded to rank 6 so that
//! ONNX's numpy broadcasting is burn's same-rank broadcasting) and small integer tensors
//! (shapes, indices, axes) kept on the host.

use burn::tensor::{Device, Tensor, TensorData};

/// Highest tensor rank the executor handles.
pub const MAX_RANK: usize = 6;

/// A float tensor of logical rank `rank`, stored as a rank-6 tensor with leading 1s.
#[derive(Clone, Debug)]
pub(crate) struct FT {
    pub t: Tensor<MAX_RANK>,
    pub rank: usize,
}

/// An integer tensor (shape arithmetic), row-major.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct IT {
    pub data: Vec<i64>,
    pub dims: Vec<usize>,
}

#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "values live briefly in the executor's map; boxing would add an allocation per node"
)]
pub(crate) enum Value {
    F(FT),
    I(IT),
}

pub(crate) fn pad6(dims: &[usize]) -> [usize; MAX_RANK] {
    let mut out = [1; MAX_RANK];
    out[MAX_RANK - dims.len()..].copy_from_slice(dims);
    out
}

impl FT {
    pub fn dims(&self) -> Vec<usize> {
        self.t.dims()[MAX_RANK - self.rank..].to_vec()
    }

    /// Wraps a rank-`N` tensor.
    pub fn from_tensor<const N: usize>(t: Tensor<N>) -> FT {
        let dims = t.dims();
        FT {
            t: t.reshape(pad6(&dims)),
            rank: N,
        }
    }

    /// The tensor at rank `N` (`N` must equal the logical rank).
    pub fn as_rank<const N: usize>(&self) -> Tensor<N> {
        let d = self.dims();
        let mut s = [1usize; N];
        s.copy_from_slice(&d);
        self.t.clone().reshape(s)
    }

    /// Reshapes to `dims` (same element count).
    pub fn reshape(&self, dims: &[usize]) -> FT {
        FT {
            t: self.t.clone().reshape(pad6(dims)),
            rank: dims.len(),
        }
    }

    /// Axis `a` of the logical tensor as a storage axis.
    pub fn ax(&self, a: usize) -> usize {
        MAX_RANK - self.rank + a
    }

    pub fn from_data(data: TensorData, device: &Device) -> FT {
        let dims = data.shape().to_vec();
        let flat = data.convert::<f32>();
        let n = flat.num_elements();
        let values = flat.try_to_vec::<f32>().unwrap_or_default();
        let t: Tensor<1> = Tensor::from_data(TensorData::new(values, [n]), device);
        FT {
            t: t.reshape(pad6(&dims)),
            rank: dims.len(),
        }
    }
}

impl IT {
    pub fn vec(v: Vec<i64>) -> IT {
        let n = v.len();
        IT {
            data: v,
            dims: vec![n],
        }
    }
    pub fn to_float(&self, device: &Device) -> FT {
        let data: Vec<f32> = self.data.iter().map(|&v| v as f32).collect();
        FT::from_data(TensorData::new(data, self.dims.clone()), device)
    }
}
