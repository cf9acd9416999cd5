//! Privacy evaluation for obfnet: how much do the obfuscators (and cheap baselines) protect
//! the inputs, measured by attacks.
//!
//! Where it fits: `obfnet-nn` trains the server model and the K obfuscators; this crate attacks
//! them. The `obfnet attack` and `obfnet report` commands drive it.
//!
//! # Threat model
//! Honest-but-curious server. It knows the frozen model, the architecture and weights of all K
//! obfuscators (it trained them), and has data from the same distribution (its own training
//! split). It does not know which of the K nets a device used for a given sample. Attackers
//! train only on the training split; they are scored on test-split samples.
//!
//! # What is here
//! - [`metrics`]: MSE, PSNR, SSIM (Gaussian window, Wang et al. 2004) in pixel space `[0, 1]`.
//! - [`Attack`] implementations: [`InverseNet`] (black-box inverse network, pooled or one per
//!   net), [`Rmle`] (white-box regularised input optimisation over every candidate net),
//!   [`ShadowAttack`] (query-free shadow model); [`distinguish`] (raw-vs-obfuscated AUC and
//!   which-of-K accuracy).
//! - The strong suite (the default [`AttackConfig`], preset [`Preset::Strong`]):
//!   [`StrongInverse`] decoders — standardised inputs, the whole training split through the
//!   known nets, BCE on pixels, warm-up + cosine LR, early stopping on a validation split —
//!   pooled, per net, and conditioned on the answered label and the predicted net, each an MLP
//!   or a convolutional decoder ([`DecoderArch::Conv`]: transposed convolutions with batch
//!   norm); [`NearestNeighbour`] retrieval in obfuscated space; and [`LatentSearch`], a
//!   generative-prior inversion (a VAE trained on the server's images, then a white-box latent
//!   search through every known net with restarts — GLASS scaled to MNIST). Every score carries the median and 90th
//!   percentile over images and the SSIM gain over the label-only floor ([`Gain`]).
//! - Baselines behind the [`Scheme`] trait: [`NoiseScheme`] (local Laplace / Gaussian noise,
//!   with the formal DP guarantee where the sensitivity argument holds) and
//!   [`ProjectionScheme`] (random projection, with the server classifier retrained).
//!
//! # Guarantee
//! Numbers from attacks are **empirical**: they say what these attacks, at these budgets,
//! achieved — a low score is no proof that a stronger attack fails. Only [`Guarantee::FormalDp`]
//! is a bound.
//!
//! ```no_run
//! use obfnet_privacy::{AttackConfig, EvalContext, ObfScheme, Recogniser, evaluate_scheme};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = obfnet_data::ImageDataset::load_mnist_dir("mnist", "data/mnist".as_ref())?;
//! let device = obfnet_nn::default_device();
//! let train = obfnet_nn::Dataset::from_images(&data.train, &device)?;
//! let test = obfnet_nn::Dataset::from_images(&data.test, &device)?;
//! let (server, _, _) = obfnet_nn::load_server_model("runs/qs-default/server".as_ref())?;
//! let bytes = std::fs::read("runs/qs-default/obfnets-obfnet2.obfb")?;
//! let stack = obfnet_nn::ObfStack::from_bundle(&obfnet_core::Bundle::from_bytes(&bytes)?, &device)?;
//! let cfg = AttackConfig::default();
//! let recogniser = Recogniser::train(&cfg, &train, &test, &mut |_| {})?;
//! let server = obfnet_nn::ServerModel::LeNet(server);
//! let ctx = EvalContext { server: &server, train: &train, test: &test, recogniser: &recogniser };
//! let result = evaluate_scheme(&ObfScheme::new(&stack), ctx, &cfg, &mut |_| {})?;
//! for a in &result.attacks {
//!     println!("{}: SSIM {:.3}", a.attack, a.scores.ssim);
//! }
//! # Ok(()) }
//! ```

mod attack;
mod auc;
mod distinguish;
mod error;
mod evaluate;
mod latent;
pub mod mechanism;
pub mod metrics;
mod mlp;
mod scheme;
mod speaker;
mod strong;

pub use attack::{
    Attack, FitContext, InverseConfig, InverseMode, InverseNet, Rmle, RmleConfig, ShadowAttack, ShadowConfig,
};
pub use auc::roc_auc;
pub use distinguish::{DistinguisherConfig, Distinguishers, distinguish};
pub use error::{Error, Result};
pub use evaluate::{
    AttackConfig, AttackScore, AttackSelection, EvalContext, Gain, OBSERVED_AS_IMAGE, Pictures, Preset,
    Recogniser, SchemeResult, StrongConfig, evaluate_scheme,
};
pub use latent::{LatentConfig, LatentSearch, Vae, VaeReport};
pub use mechanism::{Guarantee, Noise};
pub use mlp::{Mlp, MlpConfig, Targets, from_host, to_vec, train_mlp};
pub use scheme::{
    Family, NoiseScheme, ObfScheme, ProjectionKind, ProjectionScheme, Scheme, Utility, observe, observe_with,
};
pub use speaker::{SpeakerConfig, SpeakerResult, speaker_identification, speaker_indices};
pub use strong::{
    ConvDecoder, DecoderArch, DecoderConfig, FitReport, NearestNeighbour, NeighbourConfig, StrongInverse,
    StrongMode,
};
