//! Cryptographic baselines for obfnet: what privacy-preserving inference costs when it is done
//! with cryptography instead of obfuscation.
//!
//! Where it fits: `obfnet compare` (obfnet-cli) puts these next to ObfNet, local DP noise and
//! random projection in one table. Both baselines evaluate the same CryptoNets-style integer
//! network ([`model::IntNet`]: conv 5×5 stride 2 → square → dense), trained with the project's
//! burn engine and quantised so that every value is an exact integer:
//!
//! - [`he`]: BFV homomorphic encryption (fhe.rs), one image per SIMD slot, client encrypts,
//!   server computes on ciphertexts, client decrypts (cargo feature `he`, on by default);
//! - [`mpc`]: two-party additive secret sharing over Z_2^64 with Beaver triples from a dealer
//!   (offline) and an online phase between client and server over a real TCP socket.
//!
//! Both check every result against the plaintext integer net ([`model::IntNet::forward`]).
//! Parameters, security claims and threat models: `docs/SECURITY-BASELINES.md`.
//!
//! ```no_run
//! use obfnet_crypto::he::{HeConfig, run_he};
//! use obfnet_crypto::model::{SquareNetConfig, train_square_net};
//! use obfnet_crypto::mpc::{MpcConfig, run_mpc};
//! # fn main() -> obfnet_crypto::Result<()> {
//! let data = obfnet_data::ImageDataset::load_mnist_dir("mnist", "data/mnist".as_ref())?;
//! let (net, trained) = train_square_net(&SquareNetConfig::default(), &data.train, &data.test, &mut |_, _| {})?;
//! println!("integer net: {:.4} on the test split", trained.int_accuracy);
//! let he = run_he(&HeConfig::default(), &net, &data.test, 100, &mut |_| {})?;
//! assert_eq!(he.mismatches, 0); // decrypted logits == plaintext integer logits
//! let report = run_mpc(&MpcConfig::default(), &net, &data.test, 100)?;
//! println!("2PC accuracy {:.4}, {} online bytes", report.accuracy(), report.online_bytes());
//! # Ok(()) }
//! ```

mod error;
pub mod he;
pub mod model;
pub mod mpc;

pub use error::{Error, Result};
