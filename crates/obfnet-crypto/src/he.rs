//! Homomorphic-encryption baseline: the [`IntNet`] evaluated under BFV (fhe.rs), CryptoNets style.
//!
//! The client packs one image per SIMD slot: ciphertext *i* holds pixel *i* of up to `n` images
//! (n = 8192 by default), so one batch of 729 ciphertexts (the 27×27 pixels the stride-2
//! convolution reads) carries up to 8192 images. The server multiplies those ciphertexts by the
//! plaintext integer weights (constants, the same for every slot), squares the 720 hidden units
//! (the only ciphertext × ciphertext products: multiplicative depth 1, no relinearisation needed
//! because nothing multiplies a product again; the results stay 3-component ciphertexts), applies
//! the dense layer and returns 10 ciphertexts. The client decrypts the 10 logits of every slot.
//!
//! A single image costs the same as a full batch (the work is per ciphertext, not per slot), so
//! the latency of one image is the time of one batch; throughput divides it by the batch size.
//!
//! # Threat model
//! Semi-honest server: it follows the protocol and tries to learn the images from what it sees
//! (ciphertexts only). The client learns the 10 logits per image — and so, by querying, may
//! learn about the weights (no circuit privacy: the output ciphertexts are not re-randomised and
//! their noise may carry information about the weights). A malicious server can return wrong
//! logits undetected. Key generation and decryption happen on the client.
//!
//! # Guarantee
//! Computational: IND-CPA security of BFV under Ring-LWE, at ≈128 bits with the default
//! parameters (n = 8192, log2 q = 218, the HomomorphicEncryption.org security standard's bound
//! for 128-bit classical security; fhe.rs lists the same moduli in `default_parameters_128`).

use serde::{Deserialize, Serialize};

use crate::model::{IntNet, PIXELS};
use crate::{Error, Result};

/// The ciphertext moduli fhe.rs lists as ≈128-bit secure for n = 8192 (43 + 43 + 44 + 44 + 44 =
/// 218 bits, the HomomorphicEncryption.org standard's bound for n = 8192).
pub const MODULI_8192: [u64; 5] = [
    0x0000_07ff_fffd_8001,
    0x0000_07ff_fffc_8001,
    0x0000_0fff_ffff_c001,
    0x0000_0fff_fff6_c001,
    0x0000_0fff_ffeb_c001,
];

/// Largest log2 q for ≈128-bit classical security per ring degree, from the
/// HomomorphicEncryption.org security standard (Albrecht et al., 2018), Table for ternary secrets
/// (the strictest of its secret distributions).
pub const MAX_LOG_Q_128: [(usize, usize); 6] = [
    (1024, 27),
    (2048, 54),
    (4096, 109),
    (8192, 218),
    (16384, 438),
    (32768, 881),
];

/// BFV parameters and evaluation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeConfig {
    /// Ring degree n: slots per ciphertext = images per batch. Default 8192.
    pub degree: usize,
    /// Ciphertext moduli (primes ≡ 1 mod 2n). Default [`MODULI_8192`] (218 bits).
    pub moduli: Vec<u64>,
    /// Bits of the plaintext modulus t (a prime ≡ 1 mod 2n, for SIMD slots). `None`: the fewest
    /// bits that hold the network's worst case plus one bit of margin.
    pub plaintext_bits: Option<usize>,
    /// Refuse parameters above the 128-bit bound of [`MAX_LOG_Q_128`] (true by default; tests
    /// with tiny rings turn it off, and the report then says "insecure").
    pub require_128_bit: bool,
    /// Worker threads of the server's evaluation.
    pub threads: usize,
}

impl Default for HeConfig {
    fn default() -> Self {
        HeConfig {
            degree: 8192,
            moduli: MODULI_8192.to_vec(),
            plaintext_bits: None,
            require_128_bit: true,
            threads: 1,
        }
    }
}

impl HeConfig {
    /// log2 of the ciphertext modulus q (sum of the moduli's bit lengths).
    pub fn log_q(&self) -> usize {
        self.moduli.iter().map(|m| 64 - m.leading_zeros() as usize).sum()
    }

    /// Claimed classical security in bits (128 when within the standard's bound, else 0).
    pub fn security_bits(&self) -> u32 {
        let ok = MAX_LOG_Q_128
            .iter()
            .any(|&(n, q)| n == self.degree && self.log_q() <= q);
        if ok { 128 } else { 0 }
    }

    /// Checks the config and the net against each other; returns the plaintext bits to use.
    pub fn validate(&self, net: &IntNet) -> Result<usize> {
        if self.degree < 16 || !self.degree.is_power_of_two() {
            return Err(Error::Parameter {
                name: "degree",
                reason: format!("{} is not a power of two ≥ 16", self.degree),
            });
        }
        if self.moduli.is_empty() {
            return Err(Error::Parameter {
                name: "moduli",
                reason: "at least one ciphertext modulus is needed".into(),
            });
        }
        if self.threads == 0 {
            return Err(Error::Parameter {
                name: "threads",
                reason: "must be at least 1".into(),
            });
        }
        if self.require_128_bit && self.security_bits() < 128 {
            return Err(Error::Parameter {
                name: "moduli",
                reason: format!(
                    "n = {} with log2 q = {} is above the HomomorphicEncryption.org 128-bit bound {}",
                    self.degree,
                    self.log_q(),
                    MAX_LOG_Q_128
                        .iter()
                        .find(|&&(n, _)| n == self.degree)
                        .map_or("(n not in the table)".to_string(), |(_, q)| q.to_string())
                ),
            });
        }
        net.validate()?;
        let needed = net.worst_case_bits();
        let bits = match self.plaintext_bits {
            Some(b) => b,
            None => needed.ceil() as usize + 1,
        };
        // A prime ≡ 1 mod 2n needs more bits than log2(2n); fhe.rs takes 10..=62.
        let min_bits = (2 * self.degree).trailing_zeros() as usize + 2;
        if !(min_bits.max(10)..=62).contains(&bits) {
            if bits > 62 {
                return Err(Error::Overflow {
                    space: "BFV plaintext modulus",
                    needed_bits: needed,
                    available_bits: 61.0,
                });
            }
            return Err(Error::Parameter {
                name: "plaintext_bits",
                reason: format!(
                    "{bits} is outside {}..=62 for n = {}",
                    min_bits.max(10),
                    self.degree
                ),
            });
        }
        // fhe.rs needs t below every ciphertext modulus (above it, it panics or decrypts
        // garbage — measured): a t of fewer bits than the smallest modulus is always below it.
        let min_q_bits = self
            .moduli
            .iter()
            .map(|m| 64 - m.leading_zeros() as usize)
            .min()
            .unwrap_or(0);
        if bits >= min_q_bits {
            return Err(Error::Parameter {
                name: "plaintext_bits",
                reason: format!(
                    "a {bits}-bit plaintext modulus is not below the smallest ciphertext modulus ({min_q_bits} bits); \
                     the network needs {needed:.1} signed bits — lower `weight_bits` or `input_max`"
                ),
            });
        }
        // t has `bits` bits, so it is ≥ 2^(bits−1): it holds signed values of bits − 1 bits.
        if needed > (bits - 1) as f64 {
            return Err(Error::Overflow {
                space: "BFV plaintext modulus",
                needed_bits: needed,
                available_bits: (bits - 1) as f64,
            });
        }
        Ok(bits)
    }
}

/// What one HE run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeReport {
    /// Ring degree.
    pub degree: usize,
    /// log2 q.
    pub log_q: usize,
    /// Plaintext modulus t.
    pub plaintext_modulus: u64,
    /// Claimed security bits (0 = below the standard's bound, test parameters).
    pub security_bits: u32,
    /// Images evaluated.
    pub images: usize,
    /// Batches (ciphertext groups) run.
    pub batches: usize,
    /// Images whose decrypted argmax equals the label.
    pub correct: usize,
    /// Images whose decrypted logits differ from the plaintext integer net (must be 0).
    pub mismatches: usize,
    /// Ciphertexts the client sends per batch.
    pub cts_up_per_batch: usize,
    /// Ciphertexts the server returns per batch.
    pub cts_down_per_batch: usize,
    /// Client → server bytes, all batches.
    pub bytes_up: u64,
    /// Server → client bytes, all batches.
    pub bytes_down: u64,
    /// Client: key generation seconds (once).
    pub keygen_seconds: f64,
    /// Client: encryption + serialisation seconds, per batch (median over batches).
    pub encrypt_seconds: f64,
    /// Server: deserialisation + evaluation + serialisation seconds, per batch (median).
    pub server_seconds: f64,
    /// Client: deserialisation + decryption seconds, per batch (median).
    pub decrypt_seconds: f64,
    /// Worker threads of the server.
    pub threads: usize,
}

impl HeReport {
    /// Accuracy over the images run.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.images.max(1) as f64
    }
}

/// Progress of an HE run.
#[derive(Clone, Debug, PartialEq)]
pub enum HeEvent {
    /// Batch `batch` of `of` started with `images` images.
    Batch {
        /// 0-based batch index.
        batch: usize,
        /// Number of batches.
        of: usize,
        /// Images in this batch.
        images: usize,
    },
    /// A phase of the current batch finished, with its seconds.
    Phase {
        /// "encrypt", "server", "decrypt".
        name: &'static str,
        /// Seconds it took.
        seconds: f64,
    },
}

/// Index of the ciphertext that carries `pixel`, or `None` for pixels the convolution never
/// reads (the last row and column).
pub fn input_slot(pixel: usize) -> Option<usize> {
    let side = crate::model::SIDE;
    let (r, c) = (pixel / side, pixel % side);
    (pixel < PIXELS && r < side - 1 && c < side - 1).then_some(r * (side - 1) + c)
}

/// Ciphertexts per batch sent by the client (pixels the convolution reads).
pub const INPUT_CTS: usize = 27 * 27;

#[cfg(feature = "he")]
pub use imp::run_he;

/// Runs the HE baseline over `images` (the first `count` of them) and checks every decrypted
/// result against [`IntNet::forward`].
#[cfg(not(feature = "he"))]
pub fn run_he(
    _cfg: &HeConfig,
    _net: &IntNet,
    _images: &obfnet_data::LabeledImages,
    _count: usize,
    _progress: &mut dyn FnMut(HeEvent),
) -> Result<HeReport> {
    Err(Error::NotCompiled)
}

#[cfg(feature = "he")]
mod imp {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Instant;

    use fhe::bfv::{BfvParameters, BfvParametersBuilder, Ciphertext, Encoding, Plaintext, SecretKey};
    use fhe_traits::{
        DeserializeParametrized, FheDecoder, FheDecrypter, FheEncoder, FheEncrypter, Serialize,
    };
    use obfnet_data::LabeledImages;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::model::{CLASSES, CONV_SIDE, KERNEL, argmax, image};

    fn he(e: impl std::fmt::Display) -> Error {
        Error::He(e.to_string())
    }

    fn build_params(cfg: &HeConfig, t_bits: usize) -> Result<Arc<BfvParameters>> {
        let two_n = 2 * cfg.degree as u64;
        let t =
            fhe_math::zq::primes::generate_prime(t_bits, two_n, 1u64 << t_bits).ok_or(Error::Parameter {
                name: "plaintext_bits",
                reason: format!("no {t_bits}-bit prime ≡ 1 mod {two_n}"),
            })?;
        BfvParametersBuilder::new()
            .set_degree(cfg.degree)
            .set_moduli(&cfg.moduli)
            .set_plaintext_modulus(t)
            .build_arc()
            .map_err(he)
    }

    /// The server: plaintext weights encoded once, evaluation on ciphertexts.
    struct Server {
        par: Arc<BfvParameters>,
        net: IntNet,
        /// `|w|` → constant plaintext.
        consts: BTreeMap<u64, Plaintext>,
        conv_bias: Vec<Plaintext>,
        fc_bias: Vec<Plaintext>,
        threads: usize,
    }

    impl Server {
        fn new(par: Arc<BfvParameters>, net: &IntNet, threads: usize) -> Result<Server> {
            let mut consts = BTreeMap::new();
            for w in net.conv_w.iter().chain(&net.fc_w).chain(std::iter::once(&0)) {
                let a = w.unsigned_abs();
                if let std::collections::btree_map::Entry::Vacant(e) = consts.entry(a) {
                    e.insert(Plaintext::try_encode(&[a][..], Encoding::poly(), &par).map_err(he)?);
                }
            }
            let enc = |b: &i64| Plaintext::try_encode(&[*b][..], Encoding::poly(), &par).map_err(he);
            let conv_bias = net.conv_b.iter().map(enc).collect::<Result<Vec<_>>>()?;
            let fc_bias = net.fc_b.iter().map(enc).collect::<Result<Vec<_>>>()?;
            Ok(Server {
                par: par.clone(),
                net: net.clone(),
                consts,
                conv_bias,
                fc_bias,
                threads,
            })
        }

        fn konst(&self, w: i64) -> Result<&Plaintext> {
            self.consts
                .get(&w.unsigned_abs())
                .ok_or_else(|| Error::He(format!("no plaintext for weight {w}")))
        }

        /// acc ± ct·|w|
        fn mac(&self, acc: &mut Option<Ciphertext>, ct: &Ciphertext, w: i64) -> Result<()> {
            if w == 0 {
                return Ok(());
            }
            let p = ct * self.konst(w)?;
            match acc {
                None => *acc = Some(if w < 0 { -p } else { p }),
                Some(a) if w < 0 => *a -= &p,
                Some(a) => *a += &p,
            }
            Ok(())
        }

        /// Conv + bias + square for hidden units `range`.
        fn hidden_units(
            &self,
            inputs: &[Ciphertext],
            range: std::ops::Range<usize>,
        ) -> Result<Vec<Ciphertext>> {
            let cs = CONV_SIDE * CONV_SIDE;
            let mut out = Vec::with_capacity(range.len());
            for unit in range {
                let (m, pos) = (unit / cs, unit % cs);
                let mut acc = None;
                for ky in 0..KERNEL {
                    for kx in 0..KERNEL {
                        let px = IntNet::tap(pos, ky, kx);
                        let slot =
                            input_slot(px).ok_or_else(|| Error::He("tap outside the read pixels".into()))?;
                        self.mac(
                            &mut acc,
                            &inputs[slot],
                            self.net.conv_w[m * 25 + ky * KERNEL + kx],
                        )?;
                    }
                }
                let mut c = match acc {
                    Some(c) => c,
                    None => &inputs[0] * self.konst(0)?,
                };
                c += &self.conv_bias[m];
                out.push(&c * &c);
            }
            Ok(out)
        }

        /// Dense output `o`: inputs grouped by weight value, one plaintext product per value.
        fn output(&self, hidden: &[Ciphertext], o: usize) -> Result<Ciphertext> {
            let width = self.net.hidden();
            let row = &self.net.fc_w[o * width..(o + 1) * width];
            let mut groups: BTreeMap<i64, Ciphertext> = BTreeMap::new();
            for (h, &w) in hidden.iter().zip(row) {
                if w == 0 {
                    continue;
                }
                match groups.get_mut(&w) {
                    Some(g) => *g += h,
                    None => {
                        groups.insert(w, h.clone());
                    }
                }
            }
            let mut acc = None;
            for (w, g) in &groups {
                self.mac(&mut acc, g, *w)?;
            }
            let mut c = match acc {
                Some(c) => c,
                None => &hidden[0] * self.konst(0)?,
            };
            c += &self.fc_bias[o];
            Ok(c)
        }

        fn evaluate(&self, inputs: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
            if inputs.len() != INPUT_CTS {
                return Err(Error::Protocol(format!(
                    "{} input ciphertexts, expected {INPUT_CTS}",
                    inputs.len()
                )));
            }
            let h = self.net.hidden();
            let per = h.div_ceil(self.threads);
            let hidden: Vec<Ciphertext> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..self.threads)
                    .map(|i| {
                        let r = (i * per).min(h)..((i + 1) * per).min(h);
                        s.spawn(move || self.hidden_units(inputs, r))
                    })
                    .collect();
                let mut all = Vec::with_capacity(h);
                for hd in handles {
                    let part = hd.join().map_err(|_| Error::He("worker panicked".into()))??;
                    all.extend(part);
                }
                Ok::<_, Error>(all)
            })?;
            std::thread::scope(|s| {
                let hidden = &hidden;
                let per = CLASSES.div_ceil(self.threads);
                let handles: Vec<_> = (0..self.threads)
                    .map(|i| {
                        let r = (i * per).min(CLASSES)..((i + 1) * per).min(CLASSES);
                        s.spawn(move || r.map(|o| self.output(hidden, o)).collect::<Result<Vec<_>>>())
                    })
                    .collect();
                let mut all = Vec::with_capacity(CLASSES);
                for hd in handles {
                    all.extend(hd.join().map_err(|_| Error::He("worker panicked".into()))??);
                }
                Ok(all)
            })
        }

        /// Wire in → wire out, as the server would run it.
        fn handle(&self, request: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
            let cts = request
                .iter()
                .map(|b| Ciphertext::from_bytes(b, &self.par).map_err(he))
                .collect::<Result<Vec<_>>>()?;
            Ok(self.evaluate(&cts)?.iter().map(|c| c.to_bytes()).collect())
        }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    /// Runs the HE baseline over the first `count` images and checks every decrypted result
    /// against [`IntNet::forward`].
    pub fn run_he(
        cfg: &HeConfig,
        net: &IntNet,
        images: &LabeledImages,
        count: usize,
        progress: &mut dyn FnMut(HeEvent),
    ) -> Result<HeReport> {
        let t_bits = cfg.validate(net)?;
        let count = count.min(images.len());
        if count == 0 {
            return Err(Error::Input("no images to evaluate".into()));
        }
        if images.rows * images.cols != PIXELS {
            return Err(Error::Input("the HE net takes 28×28 images".into()));
        }
        // Client and server each build the parameters from the public config.
        let client_par = build_params(cfg, t_bits)?;
        let server = Server::new(build_params(cfg, t_bits)?, net, cfg.threads)?;
        let mut rng = ChaCha20Rng::from_os_rng();
        let tk = Instant::now();
        let sk = SecretKey::random(&client_par, &mut rng);
        let keygen_seconds = tk.elapsed().as_secs_f64();

        let n = cfg.degree;
        let batches = count.div_ceil(n);
        let (mut enc_t, mut srv_t, mut dec_t) = (Vec::new(), Vec::new(), Vec::new());
        let (mut bytes_up, mut bytes_down) = (0u64, 0u64);
        let (mut correct, mut mismatches) = (0usize, 0usize);
        let mut cts_down = 0;
        for b in 0..batches {
            let start = b * n;
            let len = n.min(count - start);
            progress(HeEvent::Batch {
                batch: b,
                of: batches,
                images: len,
            });
            // Client: quantise, pack pixel i of every image into ciphertext i, encrypt.
            let te = Instant::now();
            let q: Vec<Vec<i64>> = (start..start + len)
                .map(|i| net.quantise_image(image(images, i)))
                .collect::<Result<_>>()?;
            let mut request = Vec::with_capacity(INPUT_CTS);
            for px in 0..PIXELS {
                if input_slot(px).is_none() {
                    continue;
                }
                let slots: Vec<u64> = q.iter().map(|img| img[px] as u64).collect();
                let pt = Plaintext::try_encode(&slots[..], Encoding::simd(), &client_par).map_err(he)?;
                let ct: Ciphertext = sk.try_encrypt(&pt, &mut rng).map_err(he)?;
                request.push(ct.to_bytes());
            }
            enc_t.push(te.elapsed().as_secs_f64());
            progress(HeEvent::Phase {
                name: "encrypt",
                seconds: te.elapsed().as_secs_f64(),
            });
            bytes_up += request.iter().map(|r| r.len() as u64).sum::<u64>();

            let ts = Instant::now();
            let response = server.handle(&request)?;
            srv_t.push(ts.elapsed().as_secs_f64());
            progress(HeEvent::Phase {
                name: "server",
                seconds: ts.elapsed().as_secs_f64(),
            });
            bytes_down += response.iter().map(|r| r.len() as u64).sum::<u64>();
            cts_down = response.len();

            let td = Instant::now();
            let mut logits = vec![[0i64; CLASSES]; len];
            for (o, bytes) in response.iter().enumerate() {
                let ct = Ciphertext::from_bytes(bytes, &client_par).map_err(he)?;
                let pt = sk.try_decrypt(&ct).map_err(he)?;
                let v = Vec::<i64>::try_decode(&pt, Encoding::simd()).map_err(he)?;
                for (j, l) in logits.iter_mut().enumerate() {
                    l[o] = v[j];
                }
            }
            dec_t.push(td.elapsed().as_secs_f64());
            progress(HeEvent::Phase {
                name: "decrypt",
                seconds: td.elapsed().as_secs_f64(),
            });
            for (j, l) in logits.iter().enumerate() {
                let i = start + j;
                if argmax(l) == usize::from(images.labels[i]) {
                    correct += 1;
                }
                if net.forward(image(images, i))? != *l {
                    mismatches += 1;
                }
            }
        }
        Ok(HeReport {
            degree: n,
            log_q: cfg.log_q(),
            plaintext_modulus: client_par.plaintext(),
            security_bits: cfg.security_bits(),
            images: count,
            batches,
            correct,
            mismatches,
            cts_up_per_batch: INPUT_CTS,
            cts_down_per_batch: cts_down,
            bytes_up,
            bytes_down,
            keygen_seconds,
            encrypt_seconds: median(enc_t),
            server_seconds: median(srv_t),
            decrypt_seconds: median(dec_t),
            threads: cfg.threads,
        })
    }
}
