//! The seedable generator used for initialisation and data order: the workspace's one
//! SplitMix64, defined in `obfnet-core` (with the `rand_core` traits) and re-exported here so
//! that `obfnet_nn::SplitMix64` keeps working. A net's weights depend only on its own seed,
//! whatever K it is trained with.

pub use obfnet_core::rng::SplitMix64;
