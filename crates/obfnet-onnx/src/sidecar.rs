//! The preprocessing sidecar: `model.onnx` → `model.obfnet.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Current sidecar schema version.
pub const SIDECAR_VERSION: u32 = 1;

/// How raw u8 samples become the model's float input, read from `<model>.obfnet.json` next to
/// the `.onnx` file (`model.onnx` → `model.obfnet.json`).
///
/// A value `v` (0..=255) of channel `c` becomes `(v · scale − mean[c]) / std[c]`. The channel is
/// axis 1 of the model input (`[N, C, …]`); a single `mean`/`std` value applies to every channel.
///
/// **Default when there is no sidecar** ([`Preprocess::default`]): `scale = 1/255`, `mean = [0]`,
/// `std = [1]`, i.e. inputs in `[0, 1]` — what `torchvision.transforms.ToTensor()` gives.
///
/// ```json
/// { "version": 1, "scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530],
///   "classes": ["T-shirt", "Trouser", "…"] }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Schema version ([`SIDECAR_VERSION`]).
    pub version: u32,
    /// Multiplier applied to the u8 value first.
    #[serde(default = "default_scale")]
    pub scale: f32,
    /// Per-channel mean (one value = all channels).
    #[serde(default = "default_mean")]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation (one value = all channels); every entry must be > 0.
    #[serde(default = "default_std")]
    pub std: Vec<f32>,
    /// Optional class names, in output order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

fn default_scale() -> f32 {
    1.0 / 255.0
}
fn default_mean() -> Vec<f32> {
    vec![0.0]
}
fn default_std() -> Vec<f32> {
    vec![1.0]
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            version: SIDECAR_VERSION,
            scale: default_scale(),
            mean: default_mean(),
            std: default_std(),
            classes: None,
        }
    }
}

impl Preprocess {
    /// The sidecar path of a model: `dir/model.onnx` → `dir/model.obfnet.json`.
    pub fn sidecar_path(model: &Path) -> PathBuf {
        model.with_extension("obfnet.json")
    }

    /// Reads the sidecar next to `model`, or returns the default when there is none.
    ///
    /// # Errors
    /// [`Error::Io`] if it exists but cannot be read, [`Error::Sidecar`] if it is not valid.
    pub fn load_for(model: &Path) -> Result<Preprocess> {
        let path = Self::sidecar_path(model);
        match std::fs::read(&path) {
            Ok(bytes) => Self::from_json(&bytes, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Preprocess::default()),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Parses and validates sidecar JSON (`path` is only used in messages).
    ///
    /// # Errors
    /// [`Error::Sidecar`].
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Preprocess> {
        let p: Preprocess = serde_json::from_slice(bytes).map_err(|e| Error::Sidecar {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        p.validate().map_err(|message| Error::Sidecar {
            path: path.to_owned(),
            message,
        })?;
        Ok(p)
    }

    /// Writes this sidecar next to `model`.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save_for(&self, model: &Path) -> Result<()> {
        let path = Self::sidecar_path(model);
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Sidecar {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, json).map_err(|source| Error::Io { path, source })
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.version != SIDECAR_VERSION {
            return Err(format!(
                "version {} (this obfnet reads version {SIDECAR_VERSION})",
                self.version
            ));
        }
        if !self.scale.is_finite() || self.scale == 0.0 {
            return Err(format!("scale must be finite and non-zero, got {}", self.scale));
        }
        if self.mean.is_empty() || self.std.is_empty() {
            return Err("mean and std need at least one value".into());
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            return Err("mean values must be finite".into());
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err("std values must be finite and > 0".into());
        }
        Ok(())
    }

    /// Checks that `mean`/`std` fit `channels` (1 value, or one per channel).
    ///
    /// # Errors
    /// A message saying what does not fit.
    pub(crate) fn check_channels(&self, channels: usize) -> std::result::Result<(), String> {
        for (name, v) in [("mean", &self.mean), ("std", &self.std)] {
            if v.len() != 1 && v.len() != channels {
                return Err(format!(
                    "{name} has {} values but the model input has {channels} channels",
                    v.len()
                ));
            }
        }
        Ok(())
    }

    /// Per-channel affine map `x ↦ x·a[c] + b[c]` equal to this preprocessing, for `channels`.
    pub(crate) fn affine(&self, channels: usize) -> (Vec<f32>, Vec<f32>) {
        let pick = |v: &[f32], c: usize| if v.len() == 1 { v[0] } else { v[c] };
        (0..channels)
            .map(|c| {
                let s = pick(&self.std, c);
                (self.scale / s, -pick(&self.mean, c) / s)
            })
            .unzip()
    }
}
