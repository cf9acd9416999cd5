//! Two-party secret-sharing baseline: the [`IntNet`] evaluated by a client (holds the image) and
//! a server (holds the weights) over additive shares in the ring Z_2^64, with Beaver triples
//! from a dealer.
//!
//! # Encoding
//! Fixed point with the scale carried, never truncated: pixels are integers `0..=L`, weights are
//! integers (see [`crate::model`]), so the conv output has scale `s_conv·L`, the square
//! `(s_conv·L)²` and the logits `s_fc·(s_conv·L)²`. [`IntNet::worst_case_bits`] bounds every
//! value for every valid input; [`MpcConfig::validate`] refuses nets whose bound exceeds the 64
//! signed bits of the ring, so the shared computation is **exact** (equal to
//! [`IntNet::forward`] bit for bit, which the run checks for every image). Because nothing is
//! rescaled, no truncation protocol is needed — a deeper net would need one after each product
//! (e.g. SecureML's local truncation, which is off by one unit with probability about
//! 2^(ℓ_x + 1 − 64) per value).
//!
//! # Protocol (per batch of B images; P0 = client, P1 = server)
//! Private inputs are shared trivially: the client's share of the image is the image and the
//! server's is 0; the server's share of the weights is the weights and the client's is 0.
//! Every product uses a Beaver (matrix) triple (A, B, C = A·B) whose shares the dealer gave each
//! party in the **offline** phase; the **online** phase opens E = X − B and F = W − A (each
//! party sends its share of both; uniform masks hide the values) and each party computes its
//! share of W·X = F·E + F·B + A·E + C locally.
//!
//! 1. conv: open E (image − mask, B·784 values) and F (conv weights − mask, maps·25); the
//!    im2col of the 5×5 windows is linear, so it is applied to shares locally;
//! 2. square: a Beaver square pair (a, a²) per hidden value: open e = z − a;
//!    z² = e² + 2e·a + a²;
//! 3. dense: open E (hidden − mask, 720·B) and F (dense weights − mask, 7200);
//! 4. output: the server sends its share of the logits; the client adds its own.
//!
//! Rounds: 3 exchanges (each: client sends, server replies) + 1 server message = 4 round trips.
//! Every message is framed (tag byte + u64 element count) and its size is checked against the
//! expected one before anything is allocated.
//!
//! # Threat model
//! Semi-honest client and server that do not collude with the dealer (or each other): each sees
//! only uniformly masked values, so neither learns the other's input beyond the output (the
//! client learns the logits). Not covered: a malicious party (no MACs on shares, so a cheating
//! party can change the result undetected), a dealer that colludes with either party (it knows
//! every mask), and the architecture and sizes (public). Beaver triples must never be reused.
//!
//! # Guarantee
//! Information-theoretic against a single semi-honest party given an honest dealer (the opened
//! values are one-time-padded by uniform ring elements); the channel itself is unencrypted here
//! (a deployment would run it under TLS).

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use obfnet_data::LabeledImages;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::model::{CLASSES, CONV_SIDE, IntNet, KERNEL, PIXELS, argmax, image};
use crate::{Error, Result};

const CS: usize = CONV_SIDE * CONV_SIDE;
const TAPS: usize = KERNEL * KERNEL;
/// Bytes of a message header: tag (1) + element count (8).
pub const HEADER_BYTES: u64 = 9;

/// How the 2PC run is organised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MpcConfig {
    /// Images per protocol run (one set of triples and 4 rounds per batch). 1 = single-image
    /// latency mode.
    pub batch: usize,
    /// Seed of the dealer's ChaCha20 generator; `None` draws one from the OS (use a seed only
    /// for reproducible tests: a known seed reveals every mask).
    pub dealer_seed: Option<u64>,
    /// Socket read/write timeout in seconds (a silent peer fails the run instead of hanging it).
    pub io_timeout_secs: u64,
}

impl Default for MpcConfig {
    fn default() -> Self {
        MpcConfig {
            batch: 1000,
            dealer_seed: None,
            io_timeout_secs: 60,
        }
    }
}

impl MpcConfig {
    /// Checks the config and that the net fits the ring exactly.
    pub fn validate(&self, net: &IntNet) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::Parameter {
                name: "batch",
                reason: "must be at least 1".into(),
            });
        }
        if self.io_timeout_secs == 0 {
            return Err(Error::Parameter {
                name: "io_timeout_secs",
                reason: "must be at least 1".into(),
            });
        }
        net.validate()?;
        let needed = net.worst_case_bits();
        if needed > 64.0 {
            return Err(Error::Overflow {
                space: "ring Z_2^64",
                needed_bits: needed,
                available_bits: 64.0,
            });
        }
        Ok(())
    }
}

/// Elements each party sends per batch of `b` images, per message, in protocol order
/// (client: 3 messages; server: 4). The analytic count the counters are tested against.
pub fn message_elements(net: &IntNet, b: usize) -> (Vec<usize>, Vec<usize>) {
    let h = net.hidden();
    let r1 = b * PIXELS + net.maps * TAPS;
    let r2 = h * b;
    let r3 = h * b + CLASSES * h;
    (vec![r1, r2, r3], vec![r1, r2, r3, CLASSES * b])
}

/// Elements of one party's offline material for a batch of `b` images.
pub fn material_elements(net: &IntNet, b: usize) -> usize {
    let h = net.hidden();
    // conv triple: A (maps·25), B (b·784), C (maps·b·144); square pairs: 2·h·b;
    // dense triple: A (10·h), B (h·b), C (10·b).
    net.maps * TAPS + b * PIXELS + net.maps * b * CS + 2 * h * b + CLASSES * h + h * b + CLASSES * b
}

/// What one 2PC run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpcReport {
    /// Images evaluated.
    pub images: usize,
    /// Images per batch.
    pub batch: usize,
    /// Batches run.
    pub batches: usize,
    /// Images whose reconstructed argmax equals the label.
    pub correct: usize,
    /// Images whose reconstructed logits differ from the plaintext integer net (must be 0).
    pub mismatches: usize,
    /// Online bytes the client sent (headers included).
    pub client_sent: u64,
    /// Online bytes the server sent (headers included).
    pub server_sent: u64,
    /// Online messages the client sent.
    pub client_messages: u64,
    /// Online messages the server sent.
    pub server_messages: u64,
    /// Round trips per batch (the client waits for this many server messages).
    pub round_trips_per_batch: u64,
    /// Offline bytes the dealer sends the client.
    pub offline_client_bytes: u64,
    /// Offline bytes the dealer sends the server.
    pub offline_server_bytes: u64,
    /// Dealer seconds (all batches).
    pub dealer_seconds: f64,
    /// Client compute seconds (all batches; waiting on the socket excluded).
    pub client_compute_seconds: f64,
    /// Server compute seconds (all batches; waiting excluded).
    pub server_compute_seconds: f64,
    /// Wall seconds of the online phase (connection to last output).
    pub online_wall_seconds: f64,
}

impl MpcReport {
    /// Accuracy over the images run.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.images.max(1) as f64
    }
    /// Online bytes both ways.
    pub fn online_bytes(&self) -> u64 {
        self.client_sent + self.server_sent
    }
}

// ---------------------------------------------------------------------------------------------
// Ring helpers (all arithmetic wraps modulo 2^64).

fn add(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_add(*y)).collect()
}

fn sub(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_sub(*y)).collect()
}

fn add_into(acc: &mut [u64], b: &[u64]) {
    acc.iter_mut().zip(b).for_each(|(x, y)| *x = x.wrapping_add(*y));
}

/// `a [r×k] · b [k×c]` → `[r×c]`, row-major.
fn matmul(a: &[u64], r: usize, k: usize, b: &[u64], c: usize) -> Vec<u64> {
    let mut out = vec![0u64; r * c];
    for i in 0..r {
        let row = &mut out[i * c..(i + 1) * c];
        for t in 0..k {
            let av = a[i * k + t];
            if av == 0 {
                continue;
            }
            let brow = &b[t * c..(t + 1) * c];
            for (o, bv) in row.iter_mut().zip(brow) {
                *o = o.wrapping_add(av.wrapping_mul(*bv));
            }
        }
    }
    out
}

/// Images `[b × 784]` → 5×5 windows `[25 × (b·144)]` (column = image·144 + position). Linear.
fn im2col(x: &[u64], b: usize) -> Vec<u64> {
    let cols = b * CS;
    let mut out = vec![0u64; TAPS * cols];
    for ky in 0..KERNEL {
        for kx in 0..KERNEL {
            let t = ky * KERNEL + kx;
            for img in 0..b {
                for pos in 0..CS {
                    out[t * cols + img * CS + pos] = x[img * PIXELS + IntNet::tap(pos, ky, kx)];
                }
            }
        }
    }
    out
}

/// Conv output `[maps × (b·144)]` → hidden `[(maps·144) × b]`. Linear.
fn to_hidden(z: &[u64], maps: usize, b: usize) -> Vec<u64> {
    let mut h = vec![0u64; maps * CS * b];
    for m in 0..maps {
        for img in 0..b {
            for pos in 0..CS {
                h[(m * CS + pos) * b + img] = z[m * b * CS + img * CS + pos];
            }
        }
    }
    h
}

fn random_vec(rng: &mut ChaCha20Rng, n: usize) -> Vec<u64> {
    (0..n).map(|_| rng.next_u64()).collect()
}

// ---------------------------------------------------------------------------------------------
// Offline phase.

/// One party's offline material for one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    conv_a: Vec<u64>,
    conv_b: Vec<u64>,
    conv_c: Vec<u64>,
    sq_a: Vec<u64>,
    sq_a2: Vec<u64>,
    fc_a: Vec<u64>,
    fc_b: Vec<u64>,
    fc_c: Vec<u64>,
}

impl Material {
    fn parts(&self) -> [&Vec<u64>; 8] {
        [
            &self.conv_a,
            &self.conv_b,
            &self.conv_c,
            &self.sq_a,
            &self.sq_a2,
            &self.fc_a,
            &self.fc_b,
            &self.fc_c,
        ]
    }

    /// Serialised form (little-endian u64s), what the dealer ships to a party.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.parts()
            .iter()
            .flat_map(|p| p.iter().flat_map(|v| v.to_le_bytes()))
            .collect()
    }

    /// Parses material for `net` and a batch of `b`; the length must match exactly.
    pub fn from_bytes(bytes: &[u8], net: &IntNet, b: usize) -> Result<Material> {
        let want = material_elements(net, b) * 8;
        if bytes.len() != want {
            return Err(Error::Protocol(format!(
                "offline material of {} bytes, expected {want}",
                bytes.len()
            )));
        }
        let h = net.hidden();
        let sizes = [
            net.maps * TAPS,
            b * PIXELS,
            net.maps * b * CS,
            h * b,
            h * b,
            CLASSES * h,
            h * b,
            CLASSES * b,
        ];
        let mut words = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        let mut take = |n: usize| -> Vec<u64> { words.by_ref().take(n).collect() };
        Ok(Material {
            conv_a: take(sizes[0]),
            conv_b: take(sizes[1]),
            conv_c: take(sizes[2]),
            sq_a: take(sizes[3]),
            sq_a2: take(sizes[4]),
            fc_a: take(sizes[5]),
            fc_b: take(sizes[6]),
            fc_c: take(sizes[7]),
        })
    }
}

/// The trusted dealer: Beaver triples for one batch, as two shares.
pub fn deal(net: &IntNet, b: usize, rng: &mut ChaCha20Rng) -> (Material, Material) {
    let h = net.hidden();
    let maps = net.maps;
    let split = |total: &[u64], rng: &mut ChaCha20Rng| {
        let s0 = random_vec(rng, total.len());
        let s1 = sub(total, &s0);
        (s0, s1)
    };
    // conv: A (weights mask), B (pixel mask), C = A · im2col(B)
    let ca = random_vec(rng, maps * TAPS);
    let cb = random_vec(rng, b * PIXELS);
    let cc = matmul(&ca, maps, TAPS, &im2col(&cb, b), b * CS);
    // square pairs
    let sa = random_vec(rng, h * b);
    let sa2: Vec<u64> = sa.iter().map(|a| a.wrapping_mul(*a)).collect();
    // dense: A (weights mask [10×h]), B (hidden mask [h×b]), C = A·B
    let fa = random_vec(rng, CLASSES * h);
    let fb = random_vec(rng, h * b);
    let fc = matmul(&fa, CLASSES, h, &fb, b);
    let (ca0, ca1) = split(&ca, rng);
    let (cb0, cb1) = split(&cb, rng);
    let (cc0, cc1) = split(&cc, rng);
    let (sa0, sa1) = split(&sa, rng);
    let (sq0, sq1) = split(&sa2, rng);
    let (fa0, fa1) = split(&fa, rng);
    let (fb0, fb1) = split(&fb, rng);
    let (fc0, fc1) = split(&fc, rng);
    (
        Material {
            conv_a: ca0,
            conv_b: cb0,
            conv_c: cc0,
            sq_a: sa0,
            sq_a2: sq0,
            fc_a: fa0,
            fc_b: fb0,
            fc_c: fc0,
        },
        Material {
            conv_a: ca1,
            conv_b: cb1,
            conv_c: cc1,
            sq_a: sa1,
            sq_a2: sq1,
            fc_a: fa1,
            fc_b: fb1,
            fc_c: fc1,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Transport.

/// A framed, counted, size-checked message channel over TCP.
#[derive(Debug)]
pub struct Channel {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    /// Bytes written.
    pub sent: u64,
    /// Bytes read.
    pub received: u64,
    /// Messages written.
    pub messages: u64,
}

impl Channel {
    /// Wraps a connected stream (sets the timeouts and disables Nagle).
    pub fn new(stream: TcpStream, timeout: Duration) -> Result<Channel> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Channel {
            reader: BufReader::new(stream.try_clone()?),
            writer: BufWriter::new(stream),
            sent: 0,
            received: 0,
            messages: 0,
        })
    }

    /// Sends a tagged vector of ring elements.
    pub fn send(&mut self, tag: u8, data: &[u64]) -> Result<()> {
        self.writer.write_all(&[tag])?;
        self.writer.write_all(&(data.len() as u64).to_le_bytes())?;
        for v in data {
            self.writer.write_all(&v.to_le_bytes())?;
        }
        self.writer.flush()?;
        self.sent += HEADER_BYTES + 8 * data.len() as u64;
        self.messages += 1;
        Ok(())
    }

    /// Receives a message that must carry `tag` and exactly `len` elements.
    pub fn recv(&mut self, tag: u8, len: usize) -> Result<Vec<u64>> {
        let mut head = [0u8; 9];
        self.reader.read_exact(&mut head)?;
        let mut n = [0u8; 8];
        n.copy_from_slice(&head[1..]);
        let n = u64::from_le_bytes(n);
        if head[0] != tag || n != len as u64 {
            return Err(Error::Protocol(format!(
                "expected message {tag} with {len} elements, got message {} with {n}",
                head[0]
            )));
        }
        let mut buf = vec![0u8; len * 8];
        self.reader.read_exact(&mut buf)?;
        self.received += HEADER_BYTES + buf.len() as u64;
        Ok(buf
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Online phase.

/// One party's view of the protocol for one batch.
struct Party<'a> {
    /// 0 = client, 1 = server.
    id: u8,
    net: &'a IntNet,
    compute: Duration,
}

impl Party<'_> {
    /// Exchange one opening: the client sends first, the server answers; returns the sum.
    fn open(&mut self, ch: &mut Channel, tag: u8, mine: &[u64]) -> Result<Vec<u64>> {
        let theirs = if self.id == 0 {
            ch.send(tag, mine)?;
            ch.recv(tag, mine.len())?
        } else {
            let t = ch.recv(tag, mine.len())?;
            ch.send(tag, mine)?;
            t
        };
        Ok(add(mine, &theirs))
    }

    fn timed<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        self.compute += t.elapsed();
        r
    }

    /// Runs one batch; `x` is the client's quantised images `[b × 784]` (the server passes
    /// zeros). Returns this party's share of the logits `[10 × b]`.
    fn run(&mut self, ch: &mut Channel, mat: &Material, x: &[u64], b: usize) -> Result<Vec<u64>> {
        let net = self.net;
        let maps = net.maps;
        let h = net.hidden();
        let me0 = self.id == 0;
        let w_conv: Vec<u64> = if me0 {
            vec![0; maps * TAPS]
        } else {
            net.conv_w.iter().map(|&w| w as u64).collect()
        };
        let w_fc: Vec<u64> = if me0 {
            vec![0; CLASSES * h]
        } else {
            net.fc_w.iter().map(|&w| w as u64).collect()
        };

        // 1. conv: open E = X − B and F = W − A.
        let mine = self.timed(|| {
            let mut m = sub(x, &mat.conv_b);
            m.extend(sub(&w_conv, &mat.conv_a));
            m
        });
        let opened = self.open(ch, 1, &mine)?;
        let z = self.timed(|| {
            let (e, f) = opened.split_at(b * PIXELS);
            let e_col = im2col(e, b);
            let mut z = matmul(f, maps, TAPS, &im2col(&mat.conv_b, b), b * CS);
            add_into(&mut z, &matmul(&mat.conv_a, maps, TAPS, &e_col, b * CS));
            add_into(&mut z, &mat.conv_c);
            if me0 {
                add_into(&mut z, &matmul(f, maps, TAPS, &e_col, b * CS));
            } else {
                for m in 0..maps {
                    let bias = net.conv_b[m] as u64;
                    z[m * b * CS..(m + 1) * b * CS]
                        .iter_mut()
                        .for_each(|v| *v = v.wrapping_add(bias));
                }
            }
            to_hidden(&z, maps, b)
        });

        // 2. square: open e = z − a; z² = e² + 2e·a + a².
        let mine = self.timed(|| sub(&z, &mat.sq_a));
        let e = self.open(ch, 2, &mine)?;
        let hsq = self.timed(|| {
            e.iter()
                .zip(&mat.sq_a)
                .zip(&mat.sq_a2)
                .map(|((e, a), a2)| {
                    let v = a2.wrapping_add(2u64.wrapping_mul(*e).wrapping_mul(*a));
                    if me0 {
                        v.wrapping_add(e.wrapping_mul(*e))
                    } else {
                        v
                    }
                })
                .collect::<Vec<u64>>()
        });

        // 3. dense: open E = H − B and F = W − A.
        let mine = self.timed(|| {
            let mut m = sub(&hsq, &mat.fc_b);
            m.extend(sub(&w_fc, &mat.fc_a));
            m
        });
        let opened = self.open(ch, 3, &mine)?;
        let y = self.timed(|| {
            let (e, f) = opened.split_at(h * b);
            let mut y = matmul(f, CLASSES, h, &mat.fc_b, b);
            add_into(&mut y, &matmul(&mat.fc_a, CLASSES, h, e, b));
            add_into(&mut y, &mat.fc_c);
            if me0 {
                add_into(&mut y, &matmul(f, CLASSES, h, e, b));
            } else {
                for o in 0..CLASSES {
                    let bias = net.fc_b[o] as u64;
                    y[o * b..(o + 1) * b]
                        .iter_mut()
                        .for_each(|v| *v = v.wrapping_add(bias));
                }
            }
            y
        });
        Ok(y)
    }
}

/// Runs the 2PC baseline over the first `count` images: the dealer prepares every batch's
/// triples (offline), then a server thread and the client talk over a TCP connection on
/// 127.0.0.1 (online). Every reconstructed result is checked against [`IntNet::forward`].
pub fn run_mpc(cfg: &MpcConfig, net: &IntNet, images: &LabeledImages, count: usize) -> Result<MpcReport> {
    cfg.validate(net)?;
    let count = count.min(images.len());
    if count == 0 {
        return Err(Error::Input("no images to evaluate".into()));
    }
    if images.rows * images.cols != PIXELS {
        return Err(Error::Input("the 2PC net takes 28×28 images".into()));
    }
    let batches: Vec<(usize, usize)> = (0..count)
        .step_by(cfg.batch)
        .map(|s| (s, cfg.batch.min(count - s)))
        .collect();

    // Offline: the dealer ships serialised material to each party.
    let mut rng = match cfg.dealer_seed {
        Some(s) => ChaCha20Rng::seed_from_u64(s),
        None => ChaCha20Rng::from_os_rng(),
    };
    let td = Instant::now();
    let mut to_client = Vec::with_capacity(batches.len());
    let mut to_server = Vec::with_capacity(batches.len());
    for &(_, b) in &batches {
        let (m0, m1) = deal(net, b, &mut rng);
        to_client.push(m0.to_bytes());
        to_server.push(m1.to_bytes());
    }
    let dealer_seconds = td.elapsed().as_secs_f64();
    let offline_client_bytes = to_client.iter().map(|m| m.len() as u64).sum();
    let offline_server_bytes = to_server.iter().map(|m| m.len() as u64).sum();

    // Online.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let timeout = Duration::from_secs(cfg.io_timeout_secs);
    let sizes: Vec<usize> = batches.iter().map(|&(_, b)| b).collect();
    let t0 = Instant::now();
    let (client_result, server_result) = std::thread::scope(|s| {
        let server = s.spawn(|| -> Result<(u64, u64, Duration)> {
            let (stream, _) = listener.accept()?;
            let mut ch = Channel::new(stream, timeout)?;
            let mut party = Party {
                id: 1,
                net,
                compute: Duration::ZERO,
            };
            for (bytes, &b) in to_server.iter().zip(&sizes) {
                let mat = Material::from_bytes(bytes, net, b)?;
                let y = party.run(&mut ch, &mat, &vec![0u64; b * PIXELS], b)?;
                ch.send(4, &y)?;
            }
            Ok((ch.sent, ch.messages, party.compute))
        });
        let client = (|| -> Result<(u64, u64, Duration, Vec<[i64; CLASSES]>)> {
            let mut ch = Channel::new(TcpStream::connect(addr)?, timeout)?;
            let mut party = Party {
                id: 0,
                net,
                compute: Duration::ZERO,
            };
            let mut logits = Vec::with_capacity(count);
            for (bytes, &(start, b)) in to_client.iter().zip(&batches) {
                let mat = Material::from_bytes(bytes, net, b)?;
                let x = party.timed(|| -> Result<Vec<u64>> {
                    let mut x = Vec::with_capacity(b * PIXELS);
                    for i in start..start + b {
                        x.extend(
                            net.quantise_image(image(images, i))?
                                .into_iter()
                                .map(|v| v as u64),
                        );
                    }
                    Ok(x)
                })?;
                let y0 = party.run(&mut ch, &mat, &x, b)?;
                let y1 = ch.recv(4, CLASSES * b)?;
                party.timed(|| {
                    let y = add(&y0, &y1);
                    for img in 0..b {
                        let mut l = [0i64; CLASSES];
                        for (o, v) in l.iter_mut().enumerate() {
                            *v = y[o * b + img] as i64;
                        }
                        logits.push(l);
                    }
                });
            }
            Ok((ch.sent, ch.messages, party.compute, logits))
        })();
        let server = server
            .join()
            .map_err(|_| Error::Protocol("server thread panicked".into()));
        (client, server)
    });
    let online_wall_seconds = t0.elapsed().as_secs_f64();
    let (client_sent, client_messages, client_compute, logits) = client_result?;
    let (server_sent, server_messages, server_compute) = server_result??;

    let (mut correct, mut mismatches) = (0, 0);
    for (i, l) in logits.iter().enumerate() {
        if argmax(l) == usize::from(images.labels[i]) {
            correct += 1;
        }
        if net.forward(image(images, i))? != *l {
            mismatches += 1;
        }
    }
    Ok(MpcReport {
        images: count,
        batch: cfg.batch,
        batches: batches.len(),
        correct,
        mismatches,
        client_sent,
        server_sent,
        client_messages,
        server_messages,
        round_trips_per_batch: 4,
        offline_client_bytes,
        offline_server_bytes,
        dealer_seconds,
        client_compute_seconds: client_compute.as_secs_f64(),
        server_compute_seconds: server_compute.as_secs_f64(),
        online_wall_seconds,
    })
}
