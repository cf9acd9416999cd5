//! Manifest validation: versions, tokens, shapes, limits and layer chaining.

use alloc::format;
use alloc::string::{String, ToString};

use super::{Activation, LayerSpec, Manifest, mul_u64};
use crate::{
    DType, Error, FORMAT_VERSION, MAX_DIM, MAX_ELEMENTS, MAX_LAYERS, MAX_NETS, MAX_RANK, MAX_TOKEN_LEN,
    MIN_FORMAT_VERSION, Result, TensorSpec,
};

impl LayerSpec {
    /// Checks the hyper-parameters of layer `layer` of net `net` for range and sanity.
    pub(crate) fn validate(&self, net: usize, layer: usize) -> Result<()> {
        let bad = |reason| Err(Error::InvalidLayer { net, layer, reason });
        let dims: &[usize] = match self {
            LayerSpec::Dense { inputs, outputs, .. } => &[*inputs, *outputs],
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                in_height,
                in_width,
                ..
            } => &[
                *in_channels,
                *out_channels,
                *kernel,
                *stride,
                *in_height,
                *in_width,
            ],
        };
        if dims.contains(&0) {
            return bad("sizes, kernel and stride must be at least 1");
        }
        let too_big = match self {
            LayerSpec::Conv2d { padding, .. } => dims.iter().chain([padding]).any(|&d| d > MAX_DIM),
            LayerSpec::Dense { .. } => dims.iter().any(|&d| d > MAX_DIM),
        };
        if too_big {
            return bad("a dimension exceeds the limit of 1<<20");
        }
        if let LayerSpec::Conv2d {
            kernel,
            padding,
            in_height,
            in_width,
            ..
        } = *self
        {
            let pad2 = padding.saturating_mul(2);
            if kernel > in_height.saturating_add(pad2) || kernel > in_width.saturating_add(pad2) {
                return bad("kernel is larger than the padded input");
            }
        }
        let max = MAX_ELEMENTS as u64;
        if mul_u64(&[self.input_len()]) > max || mul_u64(&self.output_shape()) > max {
            return bad("input or output holds more than 1<<28 values");
        }
        if self.param_count_u64() > max {
            return bad("more than 1<<28 parameters");
        }
        Ok(())
    }
}

/// Checks that `value` can be written as a manifest token.
pub(super) fn token_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > MAX_TOKEN_LEN {
        Some("longer than 128 bytes")
    } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be printable ASCII without spaces")
    } else {
        None
    }
}

pub(super) fn check_token(field: impl FnOnce() -> String, value: &str) -> Result<()> {
    match token_problem(value) {
        Some(reason) => Err(Error::InvalidField {
            field: field(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Accepts the versions this crate implements.
pub(super) fn check_version(found: u32) -> Result<()> {
    if (MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
        Ok(())
    } else {
        Err(Error::UnsupportedVersion {
            found,
            oldest: MIN_FORMAT_VERSION,
            newest: FORMAT_VERSION,
        })
    }
}

pub(super) fn check_tensor_spec(field: &'static str, spec: &TensorSpec) -> Result<()> {
    let reason = if spec.shape.is_empty() || spec.shape.len() > MAX_RANK {
        "rank must be between 1 and 8"
    } else if spec.shape.iter().any(|&d| d == 0 || d > MAX_DIM) {
        "every dimension must be between 1 and 1<<20"
    } else if mul_u64(&spec.shape) > MAX_ELEMENTS as u64 {
        "more than 1<<28 elements"
    } else {
        return Ok(());
    };
    Err(Error::InvalidField {
        field: field.to_string(),
        reason,
    })
}

impl Manifest {
    /// Checks everything about the manifest that does not need the weights: version, tokens,
    /// shapes and limits, normalisation, layer ranges, layer chaining and the total parameter
    /// count. [`Manifest::parse`] runs it on every parsed manifest, and [`crate::Bundle`] runs
    /// it before writing.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedVersion`], [`Error::InvalidField`], [`Error::InvalidNormalisation`],
    /// [`Error::InvalidLayer`], [`Error::LayerChain`], [`Error::NetOutput`],
    /// [`Error::TooLarge`].
    pub fn validate(&self) -> Result<()> {
        check_version(self.format_version)?;
        if self.format_version < self.oldest_version() {
            return Err(Error::InvalidField {
                field: "format version".into(),
                reason: "int8 weights and clip activations need format version 2, output noise 3",
            });
        }
        if let Some(noise) = &self.output_noise {
            noise.validate()?;
        }
        check_token(|| "created-by".into(), &self.created_by)?;
        check_token(|| "dataset".into(), &self.dataset)?;
        check_tensor_spec("input", &self.input)?;
        check_tensor_spec("output", &self.output)?;
        self.normalisation.validate()?;
        if self.nets.is_empty() || self.nets.len() > MAX_NETS {
            return Err(Error::InvalidField {
                field: "nets".into(),
                reason: "a bundle holds between 1 and 1024 nets",
            });
        }
        let input_len = self.input.numel();
        let output_len = self.output.numel();
        let mut total_params = 0u64;
        for (i, net) in self.nets.iter().enumerate() {
            check_token(|| format!("net {i} name"), &net.name)?;
            check_token(|| format!("net {i} arch"), &net.arch)?;
            if net.layers.is_empty() || net.layers.len() > MAX_LAYERS {
                return Err(Error::InvalidField {
                    field: format!("net {i} layers"),
                    reason: "a net has between 1 and 1024 layers",
                });
            }
            let mut incoming = input_len;
            for (j, layer) in net.layers.iter().enumerate() {
                layer.validate(i, j)?;
                if layer.input_len() != incoming {
                    return Err(Error::LayerChain {
                        net: i,
                        layer: j,
                        expected: incoming,
                        found: layer.input_len(),
                    });
                }
                incoming = layer.output_len();
            }
            if incoming != output_len {
                return Err(Error::NetOutput {
                    net: i,
                    expected: output_len,
                    found: incoming,
                });
            }
            total_params = total_params.saturating_add(net.param_count_u64());
        }
        if total_params > MAX_ELEMENTS as u64 {
            return Err(Error::TooLarge {
                what: "total parameter count",
                found: total_params,
                limit: MAX_ELEMENTS as u64,
            });
        }
        Ok(())
    }

    /// The oldest format version able to express this manifest: 3 with output noise, 2 for
    /// `I8` weights or a [`Activation::Clip`] layer, else 1.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(m: &obfnet_core::Manifest) {
    /// assert!(m.oldest_version() <= obfnet_core::FORMAT_VERSION);
    /// # }
    /// ```
    pub fn oldest_version(&self) -> u32 {
        let clip = self
            .nets
            .iter()
            .flat_map(|n| &n.layers)
            .any(|l| l.activation() == Activation::Clip);
        if self.output_noise.is_some() {
            3
        } else if self.weights == DType::I8 || clip {
            2
        } else {
            MIN_FORMAT_VERSION
        }
    }
}
