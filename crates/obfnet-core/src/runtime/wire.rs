//! Encoding obfuscated samples for the network.

use alloc::vec::Vec;

use crate::Normalisation;
use crate::quant::round;

/// How an obfuscated sample is encoded for the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// The net's `f32` outputs (model-input space), little-endian: 4 bytes per value.
    F32,
    /// One byte per value in the raw sensor range: `clamp(round(invert(y)), 0, 255)` with the
    /// bundle's normalisation. The sample then has the size and dtype of a raw one, and the
    /// server normalises it exactly like a raw sample, so nothing tells the two apart on the
    /// wire. Values outside the raw range are clipped (its accuracy cost is measured by
    /// `obfnet evaluate --wire u8`).
    U8,
}

impl Wire {
    /// Appends the encoding of `values` to `dst`.
    pub fn encode(self, values: &[f32], norm: Normalisation, dst: &mut Vec<u8>) {
        match self {
            Wire::F32 => {
                dst.reserve(values.len() * 4);
                for v in values {
                    dst.extend_from_slice(&v.to_le_bytes());
                }
            }
            Wire::U8 => {
                dst.reserve(values.len());
                dst.extend(values.iter().map(|&v| to_raw_byte(norm, v)));
            }
        }
    }

    /// Bytes per value on the wire.
    pub fn bytes_per_value(self) -> usize {
        match self {
            Wire::F32 => 4,
            Wire::U8 => 1,
        }
    }

    /// The values the server will see after decoding (and, for `U8`, normalising) `values`'
    /// encoding: identity for `F32`, the quantisation round trip for `U8`.
    pub fn round_trip(self, values: &mut [f32], norm: Normalisation) {
        if self == Wire::U8 {
            for v in values {
                *v = norm.apply(to_raw_byte(norm, *v));
            }
        }
    }
}

/// `clamp(round(invert(v)), 0, 255)`; NaN maps to 0.
pub(super) fn to_raw_byte(norm: Normalisation, v: f32) -> u8 {
    let r = norm.invert(v);
    if r.is_nan() {
        return 0;
    }
    round(r.clamp(0.0, 255.0)) as u8
}
