//! The bundle container: magic, version, manifest, safetensors weights, sha256 trailer.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sha2::Digest as _;

use crate::{
    DType, Error, FORMAT_VERSION, MAGIC, MAX_MANIFEST_LEN, MIN_FORMAT_VERSION, Manifest, Result, Tensor,
    TensorData, safetensors,
};

/// Length of the fixed part before the manifest: magic, version, manifest length.
const PREFIX_LEN: usize = 16;
/// Length of the integrity trailer.
const TRAILER_LEN: usize = 32;

/// Name of the weight tensor of layer `layer` of net `net`: `net{net}.layer{layer}.weight`.
///
/// # Examples
///
/// ```
/// assert_eq!(obfnet_core::weight_tensor_name(1, 0), "net1.layer0.weight");
/// ```
pub fn weight_tensor_name(net: usize, layer: usize) -> String {
    format!("net{net}.layer{layer}.weight")
}

/// Name of the bias tensor of layer `layer` of net `net`: `net{net}.layer{layer}.bias`.
///
/// # Examples
///
/// ```
/// assert_eq!(obfnet_core::bias_tensor_name(0, 2), "net0.layer2.bias");
/// ```
pub fn bias_tensor_name(net: usize, layer: usize) -> String {
    format!("net{net}.layer{layer}.bias")
}

/// Name of the per-output-channel scale of an int8 weight: `net{net}.layer{layer}.weight_scale`.
///
/// # Examples
///
/// ```
/// assert_eq!(obfnet_core::weight_scale_tensor_name(0, 1), "net0.layer1.weight_scale");
/// ```
pub fn weight_scale_tensor_name(net: usize, layer: usize) -> String {
    format!("net{net}.layer{layer}.weight_scale")
}

/// The names of a layer's tensors in digest order: weight, (int8 only) weight scale, bias.
fn layer_tensor_names(weights: DType, net: usize, layer: usize) -> Vec<String> {
    match weights {
        DType::F32 => alloc::vec![weight_tensor_name(net, layer), bias_tensor_name(net, layer)],
        DType::I8 => alloc::vec![
            weight_tensor_name(net, layer),
            weight_scale_tensor_name(net, layer),
            bias_tensor_name(net, layer),
        ],
    }
}

/// One layer's parameters, borrowed from a [`Bundle`] (see [`Bundle::layer_params`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerParams<'a> {
    /// `F32` weights in the layout of [`crate::LayerSpec::weight_shape`], and the bias.
    F32 {
        /// Weight elements, row-major.
        weight: &'a [f32],
        /// Bias elements.
        bias: &'a [f32],
    },
    /// Per-output-channel symmetric int8 weights: the real weight of output channel `o` is
    /// `weight[o, ...] as f32 * scale[o]`.
    I8 {
        /// Quantised weight elements in `-127..=127`, row-major.
        weight: &'a [i8],
        /// One positive scale per output channel (dense output / conv output channel).
        scale: &'a [f32],
        /// Bias elements (kept in `F32`).
        bias: &'a [f32],
    },
}

/// One layer's parameters as given by the trainer, already in the bundle's layout.
///
/// `weight` is row-major in the shape of [`crate::LayerSpec::weight_shape`] (dense:
/// `[outputs, inputs]`, one row per output; conv2d: `[out_ch, in_ch, kernel, kernel]`), and
/// `bias` has [`crate::LayerSpec::bias_shape`].
///
/// # Examples
///
/// ```
/// use obfnet_core::LayerWeights;
/// // A dense 3 -> 2 layer.
/// let lw = LayerWeights { weight: vec![0.0; 2 * 3], bias: vec![0.0; 2] };
/// assert_eq!(lw.weight.len(), 6);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerWeights {
    /// Weight elements, row-major.
    pub weight: Vec<f32>,
    /// Bias elements.
    pub bias: Vec<f32>,
}

/// A validated set of obfuscator nets with their manifest.
///
/// A `Bundle` obtained from [`Bundle::new`] or [`Bundle::from_bytes`] is consistent: every
/// tensor the manifest implies exists with the right shape and dtype, no others exist, all
/// parameters are finite and each net's `sha256` matches its parameters. The manifest is a
/// public field, so it can be edited afterwards; [`Bundle::to_bytes`] re-checks everything
/// and refuses to write an inconsistent bundle.
///
/// # Integrity, not authenticity
///
/// The sha256 trailer and the per-net digests detect truncation, corruption and accidental
/// mix-ups. They do not authenticate the sender: anyone who can modify a bundle can recompute
/// them. Authenticate bundles by other means (a signature over the bytes, or a trusted channel).
///
/// # Examples
///
/// See the crate-level example for building one; loading:
///
/// ```
/// # fn load(bytes: &[u8], server_model: &[u8; 32]) -> obfnet_core::Result<()> {
/// use obfnet_core::Bundle;
/// let bundle = Bundle::from_bytes(bytes)?;
/// bundle.expect_server_model(server_model)?;
/// for (i, net) in bundle.manifest.nets.iter().enumerate() {
///     println!("net {i}: {} ({} MACs)", net.name, net.macs());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq)]
pub struct Bundle {
    /// The bundle's manifest.
    pub manifest: Manifest,
    tensors: BTreeMap<String, Tensor>,
}

impl fmt::Debug for Bundle {
    /// Shows the manifest and the tensor shapes, not the (large) parameter buffers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Shapes<'a>(&'a BTreeMap<String, Tensor>);
        impl fmt::Debug for Shapes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, t)| (k, (t.dtype(), &t.shape))))
                    .finish()
            }
        }
        f.debug_struct("Bundle")
            .field("manifest", &self.manifest)
            .field("tensors", &Shapes(&self.tensors))
            .finish()
    }
}

/// sha256 over a net's parameters: the little-endian bytes of layer 0 weight, (int8 only)
/// layer 0 weight scale, layer 0 bias, layer 1 weight, ... `None` if a tensor is missing
/// (callers check presence first).
fn net_digest(
    tensors: &BTreeMap<String, Tensor>,
    weights: DType,
    net: usize,
    layers: usize,
) -> Option<[u8; 32]> {
    let mut h = sha2::Sha256::new();
    for j in 0..layers {
        for name in layer_tensor_names(weights, net, j) {
            tensors.get(&name)?.for_each_le_chunk(|c| h.update(c));
        }
    }
    Some(h.finalize().into())
}

/// Checks the tensors against a (validated) manifest: presence, dtype, shape, finiteness,
/// positive quantisation scales, no extras, per-net digests.
fn check_tensors(manifest: &Manifest, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    let mut expected_names = BTreeSet::new();
    for (i, net) in manifest.nets.iter().enumerate() {
        for (j, layer) in net.layers.iter().enumerate() {
            let mut parts = alloc::vec![
                (weight_tensor_name(i, j), layer.weight_shape(), manifest.weights),
                (bias_tensor_name(i, j), layer.bias_shape(), DType::F32),
            ];
            if manifest.weights == DType::I8 {
                parts.push((weight_scale_tensor_name(i, j), layer.bias_shape(), DType::F32));
            }
            for (name, shape, dtype) in parts {
                let Some(t) = tensors.get(&name) else {
                    return Err(Error::MissingTensor { tensor: name });
                };
                if t.dtype() != dtype {
                    return Err(Error::DTypeMismatch {
                        tensor: name,
                        expected: dtype,
                        found: t.dtype(),
                    });
                }
                if t.shape != shape {
                    return Err(Error::ShapeMismatch {
                        tensor: name,
                        expected: shape,
                        found: t.shape.clone(),
                    });
                }
                check_elements(&name, t)?;
                if name.ends_with(".weight_scale")
                    && let Some(index) = t.as_f32().unwrap_or_default().iter().position(|&x| x <= 0.0)
                {
                    return Err(Error::InvalidScale { tensor: name, index });
                }
                expected_names.insert(name);
            }
        }
    }
    if let Some(extra) = tensors.keys().find(|k| !expected_names.contains(*k)) {
        return Err(Error::UnexpectedTensor {
            tensor: extra.clone(),
        });
    }
    for (i, net) in manifest.nets.iter().enumerate() {
        if net_digest(tensors, manifest.weights, i, net.layers.len()) != Some(net.sha256) {
            return Err(Error::DigestMismatch { net: i });
        }
    }
    Ok(())
}

/// Element count matches the shape, and every float is finite.
fn check_elements(name: &str, t: &Tensor) -> Result<()> {
    let expected = crate::numel_saturating(&t.shape);
    if t.numel() != expected {
        return Err(Error::ElementCount {
            tensor: name.into(),
            expected,
            found: t.numel(),
        });
    }
    if let TensorData::F32(v) = &t.data
        && let Some(index) = v.iter().position(|x| !x.is_finite())
    {
        return Err(Error::NonFinite {
            tensor: name.into(),
            index,
        });
    }
    Ok(())
}

/// Reads a little-endian `u32` at `at`, or reports how many bytes were needed.
fn read_u32(bytes: &[u8], at: usize) -> Result<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(Error::Truncated {
            needed: at + 4,
            available: bytes.len(),
        })
}

fn read_u64(bytes: &[u8], at: usize) -> Result<u64> {
    bytes
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(Error::Truncated {
            needed: at.saturating_add(8),
            available: bytes.len(),
        })
}

impl Bundle {
    /// Builds a bundle from the manifest and the trainer's weights (`weights[net][layer]`).
    ///
    /// Each `NetSpec::sha256` is computed here and overwrites whatever the caller passed
    /// (pass zeros).
    ///
    /// # Errors
    ///
    /// Every error of [`Manifest::validate`]; [`Error::NetCount`] / [`Error::LayerCount`]
    /// when `weights` does not have the manifest's structure; [`Error::ElementCount`] when a
    /// weight or bias buffer has the wrong length; [`Error::NonFinite`] for NaN or infinite
    /// parameters.
    pub fn new(mut manifest: Manifest, weights: Vec<Vec<LayerWeights>>) -> Result<Bundle> {
        if manifest.weights != DType::F32 {
            return Err(Error::InvalidField {
                field: "weights".into(),
                reason: "Bundle::new takes f32 weights; quantise with Bundle::quantize_int8",
            });
        }
        manifest.format_version = manifest.oldest_version();
        manifest.validate()?;
        if weights.len() != manifest.nets.len() {
            return Err(Error::NetCount {
                expected: manifest.nets.len(),
                found: weights.len(),
            });
        }
        let mut tensors = BTreeMap::new();
        for (i, (net, layers)) in manifest.nets.iter().zip(weights).enumerate() {
            if layers.len() != net.layers.len() {
                return Err(Error::LayerCount {
                    net: i,
                    expected: net.layers.len(),
                    found: layers.len(),
                });
            }
            for (j, (spec, lw)) in net.layers.iter().zip(layers).enumerate() {
                let parts = [
                    (weight_tensor_name(i, j), spec.weight_shape(), lw.weight),
                    (bias_tensor_name(i, j), spec.bias_shape(), lw.bias),
                ];
                for (name, shape, data) in parts {
                    let t = Tensor {
                        shape,
                        data: TensorData::F32(data),
                    };
                    check_elements(&name, &t)?;
                    tensors.insert(name, t);
                }
            }
        }
        for (i, net) in manifest.nets.iter_mut().enumerate() {
            // All tensors were inserted above, so the digest is always computed.
            net.sha256 = net_digest(&tensors, DType::F32, i, net.layers.len()).unwrap_or_default();
        }
        Ok(Bundle { manifest, tensors })
    }

    /// Serialises the bundle (layout in `FORMAT.md`).
    ///
    /// # Errors
    ///
    /// Re-validates first, so any error of [`Bundle::from_bytes`]'s semantic checks can occur
    /// if [`Bundle::manifest`] was edited into an inconsistent state; [`Error::TooLarge`] if
    /// the manifest text exceeds 1 MiB.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.manifest.validate()?;
        check_tensors(&self.manifest, &self.tensors)?;
        let text = self.manifest.to_text();
        if text.len() > MAX_MANIFEST_LEN {
            return Err(Error::TooLarge {
                what: "manifest length",
                found: text.len() as u64,
                limit: MAX_MANIFEST_LEN as u64,
            });
        }
        let weights = safetensors::encode_refs(self.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect())?;

        let mut out = Vec::with_capacity(PREFIX_LEN + text.len() + 8 + weights.len() + TRAILER_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.manifest.format_version.to_le_bytes());
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(&(weights.len() as u64).to_le_bytes());
        out.extend_from_slice(&weights);
        let digest = crate::sha256(&out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Parses and fully validates a bundle.
    ///
    /// Checks, in order: magic; version (before anything else, since another version may lay
    /// out the rest differently); section lengths and limits; no trailing bytes; the sha256
    /// trailer; manifest syntax and semantics ([`Manifest::parse`]); the safetensors section;
    /// that the tensors are exactly those the manifest implies, with the right dtype and shape
    /// and finite values; and each net's sha256.
    ///
    /// # Errors
    ///
    /// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::Truncated`],
    /// [`Error::TooLarge`], [`Error::TrailingBytes`], [`Error::IntegrityMismatch`],
    /// [`Error::ManifestNotUtf8`], any error of [`Manifest::parse`] and
    /// [`safetensors::decode`], [`Error::MissingTensor`], [`Error::UnexpectedTensor`],
    /// [`Error::DTypeMismatch`], [`Error::ShapeMismatch`], [`Error::NonFinite`],
    /// [`Error::DigestMismatch`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle> {
        let head = bytes.get(..MAGIC.len()).unwrap_or(bytes);
        if head != MAGIC.get(..head.len()).unwrap_or_default() {
            return Err(Error::BadMagic { found: head.to_vec() });
        }
        let version = read_u32(bytes, 8)?;
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                found: version,
                oldest: MIN_FORMAT_VERSION,
                newest: FORMAT_VERSION,
            });
        }
        let manifest_len = read_u32(bytes, 12)? as usize;
        if manifest_len > MAX_MANIFEST_LEN {
            return Err(Error::TooLarge {
                what: "manifest length",
                found: manifest_len as u64,
                limit: MAX_MANIFEST_LEN as u64,
            });
        }
        let weights_at = PREFIX_LEN + manifest_len + 8;
        let weights_len = read_u64(bytes, PREFIX_LEN + manifest_len)?;
        let total = usize::try_from(weights_len)
            .ok()
            .and_then(|w| w.checked_add(weights_at + TRAILER_LEN))
            .ok_or(Error::TooLarge {
                what: "weights length",
                found: weights_len,
                limit: (usize::MAX - weights_at - TRAILER_LEN) as u64,
            })?;
        if bytes.len() < total {
            return Err(Error::Truncated {
                needed: total,
                available: bytes.len(),
            });
        }
        if bytes.len() > total {
            return Err(Error::TrailingBytes {
                expected: total,
                found: bytes.len(),
            });
        }
        let (body, trailer) = bytes.split_at(total - TRAILER_LEN);
        let found = crate::sha256(body);
        let expected: [u8; 32] = trailer.try_into().unwrap_or_default();
        if found != expected {
            return Err(Error::IntegrityMismatch { expected, found });
        }

        let manifest_bytes = body
            .get(PREFIX_LEN..PREFIX_LEN + manifest_len)
            .unwrap_or_default();
        let text = core::str::from_utf8(manifest_bytes).map_err(|e| Error::ManifestNotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        let manifest = Manifest::parse(text)?;
        if manifest.format_version != version {
            return Err(Error::VersionMismatch {
                container: version,
                manifest: manifest.format_version,
            });
        }

        let weights = body.get(weights_at..).unwrap_or_default();
        let mut tensors = BTreeMap::new();
        for (name, t) in safetensors::decode(weights)? {
            // decode rejects duplicate names, so nothing is overwritten here.
            tensors.insert(name, t);
        }
        check_tensors(&manifest, &tensors)?;
        Ok(Bundle { manifest, tensors })
    }

    /// Checks that the bundle was trained against the server model with digest `sha256`.
    ///
    /// # Errors
    ///
    /// [`Error::ServerModelMismatch`] with `expected` = the argument, `found` = the bundle's.
    pub fn expect_server_model(&self, sha256: &[u8; 32]) -> Result<()> {
        if &self.manifest.server_model_sha256 == sha256 {
            Ok(())
        } else {
            Err(Error::ServerModelMismatch {
                expected: *sha256,
                found: self.manifest.server_model_sha256,
            })
        }
    }

    /// The parameters of layer `layer` of net `net`, in whichever dtype the bundle holds them.
    pub fn layer_params(&self, net: usize, layer: usize) -> Option<LayerParams<'_>> {
        let w = self.tensors.get(&weight_tensor_name(net, layer))?;
        let bias = self.tensors.get(&bias_tensor_name(net, layer))?.as_f32()?;
        match &w.data {
            TensorData::F32(weight) => Some(LayerParams::F32 { weight, bias }),
            TensorData::I8(weight) => {
                let scale = self
                    .tensors
                    .get(&weight_scale_tensor_name(net, layer))?
                    .as_f32()?;
                Some(LayerParams::I8 { weight, scale, bias })
            }
        }
    }

    /// The same nets with `noise` as the bundle's output noise (`None` removes it); the format
    /// version becomes the oldest that expresses the result (3 with noise). The nets' weights
    /// and digests are unchanged: the noise is drawn on the device after the last layer
    /// ([`crate::runtime::Runtime::obfuscate`]).
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a σ outside `(0, 16]`.
    pub fn with_output_noise(mut self, noise: Option<crate::OutputNoise>) -> Result<Bundle> {
        self.manifest.output_noise = noise;
        self.manifest.format_version = self.manifest.oldest_version();
        self.manifest.validate()?;
        Ok(self)
    }

    /// Quantises every net's weights to int8, per output channel and symmetric, and returns
    /// the new bundle (format version 2, [`Manifest::weights`] = `I8`). Biases stay `F32`.
    ///
    /// For output channel `o` with weights `w[o, ..]`: `scale[o] = max|w[o, ..]| / 127` (or 1
    /// for an all-zero channel) and `q = round(w / scale[o])`, so `|q| <= 127` and the
    /// rounding error per weight is at most `scale[o] / 2`. The manifest is copied unchanged
    /// except for the weight dtype, the version and the per-net digests (which now cover the
    /// int8 bytes and the scales).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] if the bundle is already int8.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(bundle: &obfnet_core::Bundle) -> obfnet_core::Result<()> {
    /// let int8 = bundle.quantize_int8()?;
    /// assert_eq!(int8.manifest.weights, obfnet_core::DType::I8);
    /// let bytes = int8.to_bytes()?; // about a quarter of the f32 bundle
    /// # let _ = bytes; Ok(()) }
    /// ```
    pub fn quantize_int8(&self) -> Result<Bundle> {
        if self.manifest.weights != DType::F32 {
            return Err(Error::InvalidField {
                field: "weights".into(),
                reason: "the bundle is already quantised",
            });
        }
        let mut manifest = self.manifest.clone();
        manifest.weights = DType::I8;
        manifest.format_version = manifest.oldest_version();
        let mut tensors = BTreeMap::new();
        for (i, net) in manifest.nets.iter().enumerate() {
            for (j, spec) in net.layers.iter().enumerate() {
                let Some(LayerParams::F32 { weight, bias }) = self.layer_params(i, j) else {
                    return Err(Error::MissingTensor {
                        tensor: weight_tensor_name(i, j),
                    });
                };
                let (q, scale) = crate::quant::quantize_rows(weight, bias.len());
                let named = [
                    (weight_tensor_name(i, j), spec.weight_shape(), TensorData::I8(q)),
                    (
                        weight_scale_tensor_name(i, j),
                        spec.bias_shape(),
                        TensorData::F32(scale),
                    ),
                    (
                        bias_tensor_name(i, j),
                        spec.bias_shape(),
                        TensorData::F32(bias.to_vec()),
                    ),
                ];
                for (name, shape, data) in named {
                    tensors.insert(name, Tensor { shape, data });
                }
            }
        }
        for (i, net) in manifest.nets.iter_mut().enumerate() {
            net.sha256 = net_digest(&tensors, DType::I8, i, net.layers.len()).unwrap_or_default();
        }
        manifest.validate()?;
        check_tensors(&manifest, &tensors)?;
        Ok(Bundle { manifest, tensors })
    }

    /// `(weight, bias)` of layer `layer` of net `net`, if it exists and is `F32`.
    pub fn layer_weights(&self, net: usize, layer: usize) -> Option<(&[f32], &[f32])> {
        let w = self.tensors.get(&weight_tensor_name(net, layer))?.as_f32()?;
        let b = self.tensors.get(&bias_tensor_name(net, layer))?.as_f32()?;
        Some((w, b))
    }

    /// The tensor called `name` (see `FORMAT.md` for the naming scheme).
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// All tensor names, sorted.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Activation, LayerSpec, NetSpec, Normalisation, TensorSpec};
    use alloc::vec;

    fn tiny() -> (Manifest, Vec<Vec<LayerWeights>>) {
        let manifest = Manifest {
            format_version: 1,
            created_by: "test".into(),
            dataset: "toy".into(),
            input: TensorSpec {
                shape: vec![1, 2, 2],
                dtype: DType::F32,
            },
            normalisation: Normalisation::MNIST,
            output: TensorSpec {
                shape: vec![4],
                dtype: DType::F32,
            },
            weights: DType::F32,
            output_noise: None,
            server_model_sha256: [9; 32],
            nets: vec![NetSpec {
                name: "n".into(),
                arch: "a".into(),
                seed: 1,
                layers: vec![LayerSpec::Dense {
                    inputs: 4,
                    outputs: 4,
                    act: Activation::None,
                }],
                sha256: [0; 32],
            }],
        };
        let w = vec![vec![LayerWeights {
            weight: (0..16).map(|i| i as f32).collect(),
            bias: vec![0.5; 4],
        }]];
        (manifest, w)
    }

    #[test]
    fn digest_is_over_little_endian_parameters() {
        let (m, w) = tiny();
        let mut raw = Vec::new();
        for x in w[0][0].weight.iter().chain(&w[0][0].bias) {
            raw.extend_from_slice(&x.to_le_bytes());
        }
        let b = Bundle::new(m, w).unwrap();
        assert_eq!(b.manifest.nets[0].sha256, crate::sha256(&raw));
    }

    #[test]
    fn new_checks_structure() {
        let (m, mut w) = tiny();
        w.push(vec![]);
        assert_eq!(
            Bundle::new(m, w),
            Err(Error::NetCount {
                expected: 1,
                found: 2
            })
        );

        let (m, mut w) = tiny();
        w[0].push(LayerWeights::default());
        assert_eq!(
            Bundle::new(m, w),
            Err(Error::LayerCount {
                net: 0,
                expected: 1,
                found: 2
            })
        );

        let (m, mut w) = tiny();
        w[0][0].bias.pop();
        assert_eq!(
            Bundle::new(m, w),
            Err(Error::ElementCount {
                tensor: "net0.layer0.bias".into(),
                expected: 4,
                found: 3
            })
        );

        let (m, mut w) = tiny();
        w[0][0].weight[5] = f32::NAN;
        assert_eq!(
            Bundle::new(m, w),
            Err(Error::NonFinite {
                tensor: "net0.layer0.weight".into(),
                index: 5
            })
        );
    }

    #[test]
    fn to_bytes_refuses_an_edited_inconsistent_manifest() {
        let (m, w) = tiny();
        let mut b = Bundle::new(m, w).unwrap();
        b.manifest.nets[0].seed = 2; // harmless edit
        assert!(b.to_bytes().is_ok());
        b.manifest.nets[0].sha256 = [0; 32];
        assert_eq!(b.to_bytes(), Err(Error::DigestMismatch { net: 0 }));
    }

    #[test]
    fn debug_output_omits_parameters() {
        let (m, w) = tiny();
        let b = Bundle::new(m, w).unwrap();
        let s = format!("{b:?}");
        assert!(s.contains("net0.layer0.weight"));
        assert!(!s.contains("15.0"));
    }

    #[test]
    fn short_inputs_are_classified() {
        assert_eq!(
            Bundle::from_bytes(b""),
            Err(Error::Truncated {
                needed: 12,
                available: 0
            })
        );
        assert_eq!(
            Bundle::from_bytes(b"OBF"),
            Err(Error::Truncated {
                needed: 12,
                available: 3
            })
        );
        assert_eq!(
            Bundle::from_bytes(b"OBX"),
            Err(Error::BadMagic {
                found: b"OBX".to_vec()
            })
        );
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&4u32.to_le_bytes());
        assert_eq!(
            Bundle::from_bytes(&v),
            Err(Error::UnsupportedVersion {
                found: 4,
                oldest: 1,
                newest: 3
            })
        );
        v[8] = 1;
        v.extend_from_slice(&(2u32 << 20).to_le_bytes());
        assert!(matches!(
            Bundle::from_bytes(&v),
            Err(Error::TooLarge {
                what: "manifest length",
                ..
            })
        ));
        v.truncate(12);
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Bundle::from_bytes(&v),
            Err(Error::TooLarge {
                what: "weights length",
                ..
            } | Error::Truncated { .. })
        ));
    }
}
