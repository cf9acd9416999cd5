//! Device-side jobs: quantising a bundle to int8, running the edge runtime on image files as a
//! device would ([`obfuscate`]), and the edge path of evaluation ([`evaluate_edge`]: every net
//! through `obfnet_core::runtime`, scored for both wire encodings and compared with the engine).

use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use obfnet_core::runtime::{NetChoice, OsRandom, Runtime, SeededRandom, Wire};
use obfnet_core::{Bundle, DType};
use serde::{Deserialize, Serialize};

use crate::say;
use crate::setup::read_bundle;

/// How input files are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputFormat {
    /// By file name: `.png`, `.idx`/`*-ubyte`/`.gz` (IDX), anything else raw.
    Auto,
    /// A grayscale (or colour, converted to luma) 8-bit PNG of the bundle's image size.
    Png,
    /// An IDX images file (u8, plain or gzip).
    Idx,
    /// Raw bytes: N images of rows×cols pixels each, concatenated.
    Raw,
}

/// What [`quantize`] or [`add_noise`] wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleRewrite {
    /// Size of the bundle read.
    pub in_bytes: usize,
    /// Size of the bundle written.
    pub out_bytes: usize,
    /// Its format version.
    pub format_version: u32,
    /// Nets it holds.
    pub nets: usize,
}

/// Quantises the bundle at `input` to int8 (per output channel) and writes it to `out`.
///
/// # Errors
/// An unreadable or invalid bundle, or I/O.
pub fn quantize(input: &Path, out: &Path) -> Result<BundleRewrite> {
    let (bytes, bundle) = read_bundle(input)?;
    let int8 = bundle
        .quantize_int8()
        .with_context(|| format!("quantising {}", input.display()))?;
    let out_bytes = int8.to_bytes()?;
    obfnet_data::write_atomic(out, &out_bytes)?;
    Ok(BundleRewrite {
        in_bytes: bytes.len(),
        out_bytes: out_bytes.len(),
        format_version: int8.manifest.format_version,
        nets: int8.manifest.nets.len(),
    })
}

/// `obfnet add-noise`: a copy of a bundle whose devices add output noise of deviation `sigma`
/// (pixel units; format 3, [`obfnet_core::OutputNoise`]), or none with `sigma = None`. The nets
/// are unchanged.
///
/// # Errors
/// An unreadable bundle, a σ outside `(0, 16]`, or I/O.
pub fn add_noise(input: &Path, sigma: Option<f32>, out: &Path) -> Result<BundleRewrite> {
    let (bytes, bundle) = read_bundle(input)?;
    let noisy = bundle
        .with_output_noise(sigma.map(|sigma| obfnet_core::OutputNoise { sigma }))
        .with_context(|| format!("setting the output noise of {}", input.display()))?;
    let out_bytes = noisy.to_bytes()?;
    obfnet_data::write_atomic(out, &out_bytes)?;
    Ok(BundleRewrite {
        in_bytes: bytes.len(),
        out_bytes: out_bytes.len(),
        format_version: noisy.manifest.format_version,
        nets: noisy.manifest.nets.len(),
    })
}

/// `obfnet obfuscate`: image files through the edge runtime, as a device would.
#[derive(Debug, Clone)]
pub struct ObfuscateJob {
    /// The bundle (f32 or int8).
    pub bundle: PathBuf,
    /// Input image files.
    pub inputs: Vec<PathBuf>,
    /// How to read them.
    pub format: InputFormat,
    /// Only the first N images.
    pub limit: Option<usize>,
    /// Output file (`.idx`: an IDX file; else the raw wire bytes).
    pub out: PathBuf,
    /// Wire encoding.
    pub wire: Wire,
    /// Always this net (None: one drawn per sample).
    pub net: Option<usize>,
    /// Seed a deterministic generator for the draw (tests only; None: the OS generator).
    pub seed: Option<u64>,
    /// Also write a preview PNG: originals over what is sent, up to 16.
    pub png: Option<PathBuf>,
}

/// What [`obfuscate`] did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObfuscateOutcome {
    /// Images obfuscated.
    pub samples: usize,
    /// Bytes written.
    pub out_bytes: usize,
    /// `f32` or `u8`.
    pub wire: String,
    /// Weights of the bundle (`f32` or `i8`).
    pub weights: String,
    /// Nets in the bundle.
    pub k: usize,
    /// How many samples each net took.
    pub per_net: Vec<usize>,
    /// Wall time.
    pub seconds: f64,
    /// `fixed`, `seeded (not for devices)` or `os-random`.
    pub choice: String,
}

/// Reads images of `rows × cols` pixels from `path`.
fn read_images(path: &Path, format: InputFormat, rows: usize, cols: usize) -> Result<Vec<Vec<u8>>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let format = match format {
        InputFormat::Auto if name.ends_with(".png") => InputFormat::Png,
        InputFormat::Auto if name.ends_with(".idx") || name.ends_with("-ubyte") || name.ends_with(".gz") => {
            InputFormat::Idx
        }
        InputFormat::Auto => InputFormat::Raw,
        f => f,
    };
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let d = rows * cols;
    let images = match format {
        InputFormat::Png => {
            vec![decode_png(&bytes, rows, cols).with_context(|| format!("{}", path.display()))?]
        }
        InputFormat::Idx => {
            let (n, r, c, pixels) =
                obfnet_data::parse_idx_images(&bytes).with_context(|| format!("{}", path.display()))?;
            ensure!(
                (r, c) == (rows, cols),
                "{}: images are {r}×{c}, the bundle's nets take {rows}×{cols}",
                path.display()
            );
            pixels.chunks_exact(d).take(n).map(<[u8]>::to_vec).collect()
        }
        InputFormat::Raw | InputFormat::Auto => {
            ensure!(
                !bytes.is_empty() && bytes.len() % d == 0,
                "{}: {} bytes is not a whole number of {rows}×{cols} raw images",
                path.display(),
                bytes.len()
            );
            bytes.chunks_exact(d).map(<[u8]>::to_vec).collect()
        }
    };
    Ok(images)
}

/// Decodes an 8-bit PNG to grayscale (colour via Rec. 601 luma; alpha ignored).
fn decode_png(bytes: &[u8], rows: usize, cols: usize) -> Result<Vec<u8>> {
    let mut decoder = png::Decoder::new(BufReader::new(Cursor::new(bytes)));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().context("not a readable PNG")?;
    let size = reader.output_buffer_size().context("PNG too large")?;
    ensure!(size <= 64 << 20, "PNG too large ({size} bytes decoded)");
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).context("decoding PNG")?;
    let (w, h) = (info.width as usize, info.height as usize);
    ensure!(
        (h, w) == (rows, cols),
        "the image is {w}×{h} pixels, the bundle's nets take {cols}×{rows}"
    );
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => bail!("indexed PNG was not expanded"),
    };
    let line = info.line_size;
    let mut out = Vec::with_capacity(rows * cols);
    for y in 0..h {
        let row = buf
            .get(y * line..y * line + w * channels)
            .context("short PNG row")?;
        for px in row.chunks_exact(channels) {
            out.push(match channels {
                1 | 2 => px[0],
                _ => {
                    let l = 0.299 * f32::from(px[0]) + 0.587 * f32::from(px[1]) + 0.114 * f32::from(px[2]);
                    l.round().clamp(0.0, 255.0) as u8
                }
            });
        }
    }
    Ok(out)
}

/// IDX file of `n` samples of `shape`: u8 images (type 0x08) or big-endian f32 (type 0x0D).
fn encode_idx(wire: Wire, shape: &[usize], n: usize, payload: &[u8]) -> Vec<u8> {
    let (code, elem) = match wire {
        Wire::U8 => (0x08u8, 1),
        Wire::F32 => (0x0Du8, 4),
    };
    // A single-channel image shape [1, rows, cols] is written as MNIST does: [n, rows, cols].
    let shape = match shape {
        [1, rest @ ..] if rest.len() == 2 => rest,
        s => s,
    };
    let mut out = vec![0, 0, code, (shape.len() + 1) as u8];
    for d in std::iter::once(n).chain(shape.iter().copied()) {
        out.extend_from_slice(&u32::try_from(d).unwrap_or(u32::MAX).to_be_bytes());
    }
    if elem == 1 {
        out.extend_from_slice(payload);
    } else {
        for v in payload.chunks_exact(4) {
            out.extend(v.iter().rev());
        }
    }
    out
}

/// Runs the job (see [`ObfuscateJob`]).
///
/// # Errors
/// An invalid bundle, unreadable or mis-sized images, a net out of range, or I/O.
pub fn obfuscate(a: &ObfuscateJob) -> Result<ObfuscateOutcome> {
    let (bytes, bundle) = read_bundle(&a.bundle)?;
    let rt = Runtime::from_bytes(&bytes)?;
    let shape = bundle.manifest.input.shape.clone();
    let (rows, cols) = match shape.as_slice() {
        [1, r, c] | [r, c] => (*r, *c),
        other => bail!("bundle input shape {other:?} is not an image"),
    };
    if let Some(n) = a.net {
        ensure!(
            n < rt.k(),
            "--net {n}: the bundle holds {} nets (0..{})",
            rt.k(),
            rt.k()
        );
    }
    let mut images = Vec::new();
    for p in &a.inputs {
        images.extend(read_images(p, a.format, rows, cols)?);
        if a.limit.is_some_and(|l| images.len() >= l) {
            break;
        }
    }
    if let Some(l) = a.limit {
        images.truncate(l);
    }
    ensure!(!images.is_empty(), "no images to obfuscate");

    let wire = a.wire;
    let mut os = OsRandom;
    let mut seeded = SeededRandom::new(a.seed.unwrap_or(0));
    let mut scratch = rt.scratch();
    let mut out = vec![0.0f32; rt.output_len()];
    let mut payload = Vec::with_capacity(images.len() * rt.output_len() * wire.bytes_per_value());
    let mut per_net = vec![0usize; rt.k()];
    let mut shown = Vec::new();
    let t = std::time::Instant::now();
    for img in &images {
        let choice = match (a.net, a.seed) {
            (Some(n), _) => NetChoice::Fixed(n),
            (None, Some(_)) => NetChoice::Random(&mut seeded),
            (None, None) => NetChoice::Random(&mut os),
        };
        let net = rt.obfuscate(img, choice, &mut out, &mut scratch)?;
        per_net[net] += 1;
        wire.encode(&out, rt.normalisation(), &mut payload);
        if shown.len() < 16 {
            let mut seen = out.clone();
            wire.round_trip(&mut seen, rt.normalisation());
            shown.push((img.clone(), seen));
        }
    }
    let seconds = t.elapsed().as_secs_f64();
    let is_idx = a.out.extension().is_some_and(|e| e == "idx");
    let file = if is_idx {
        encode_idx(wire, &bundle.manifest.output.shape, images.len(), &payload)
    } else {
        payload
    };
    obfnet_data::write_atomic(&a.out, &file)?;
    if let Some(png) = &a.png {
        let norm = rt.normalisation();
        let to_pixels = |v: &[f32]| v.iter().map(|&x| norm.invert(x)).collect::<Vec<f32>>();
        let top: Vec<Vec<f32>> = shown
            .iter()
            .map(|(img, _)| img.iter().map(|&p| f32::from(p)).collect())
            .collect();
        let bottom: Vec<Vec<f32>> = shown.iter().map(|(_, o)| to_pixels(o)).collect();
        crate::grid::write_grid_png(png, &[top, bottom], rows, cols, 3, 2)?;
    }
    Ok(ObfuscateOutcome {
        samples: images.len(),
        out_bytes: file.len(),
        wire: format!("{wire:?}").to_lowercase(),
        weights: rt.weights().manifest_name().into(),
        k: rt.k(),
        per_net,
        seconds,
        choice: match (a.net, a.seed) {
            (Some(_), _) => "fixed",
            (None, Some(_)) => "seeded (not for devices)",
            _ => "os-random",
        }
        .into(),
    })
}

/// Per-net results of the edge path of `evaluate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EdgeEval {
    /// `f32` or `i8`.
    pub weights: String,
    /// Accuracy behind each net with the f32 wire encoding.
    pub accuracy_f32_wire: Vec<f64>,
    /// Accuracy behind each net with the u8 wire encoding.
    pub accuracy_u8_wire: Vec<f64>,
    /// Largest |edge − engine| over all outputs, per net (f32 bundles only).
    pub max_abs_diff_vs_engine: Option<Vec<f32>>,
    /// Fraction of output values outside the raw range 0..=255 (clipped by the u8 wire), per net.
    pub outside_raw_range: Vec<f64>,
    /// Largest output value per net, in raw units (255 is the largest a u8 pixel holds).
    pub max_output_raw: Vec<f32>,
}

/// Runs every net of the bundle through the edge runtime on all `images` (both cores), scores
/// the results with the frozen server model for both wire encodings and, for f32 bundles with
/// `compare_engine`, compares the nets' outputs against the engine's forward pass. A bundle
/// with output noise (format 3) is scored on noisy outputs (one draw each, OS randomness), as
/// devices send them; the engine comparison is made before the noise.
///
/// # Errors
/// A bundle that does not fit the images, or a failing forward pass.
pub fn evaluate_edge(
    model: &obfnet_nn::ServerModel,
    bundle: &Bundle,
    images: &obfnet_data::LabeledImages,
    compare_engine: bool,
) -> Result<EdgeEval> {
    let rt = Runtime::from_bundle(bundle)?;
    ensure!(
        rt.input_len() == images.rows * images.cols,
        "the bundle's nets take {} values, the images have {}",
        rt.input_len(),
        images.rows * images.cols
    );
    let engine = if compare_engine && bundle.manifest.weights == DType::F32 {
        Some(obfnet_nn::ObfStack::from_bundle(
            bundle,
            &obfnet_nn::default_device(),
        )?)
    } else {
        None
    };
    let n = images.len();
    let d = rt.output_len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, 8);
    let data = engine
        .as_ref()
        .map(|_| obfnet_nn::Dataset::from_images(images, &obfnet_nn::default_device()))
        .transpose()?;
    let (mut acc_f32, mut acc_u8, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut outside, mut max_raw) = (Vec::new(), Vec::new());
    for net in 0..rt.k() {
        let mut outs = vec![0.0f32; n * d];
        let chunk = n.div_ceil(threads);
        std::thread::scope(|s| -> Result<()> {
            let mut handles = Vec::new();
            for (t, dst) in outs.chunks_mut(chunk * d).enumerate() {
                let rt = &rt;
                handles.push(s.spawn(move || -> obfnet_core::Result<()> {
                    let mut scratch = rt.scratch();
                    for (i, o) in dst.chunks_exact_mut(d).enumerate() {
                        rt.run_raw(net, images.image(t * chunk + i), o, &mut scratch)?;
                    }
                    Ok(())
                }));
            }
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("an edge worker thread panicked"))??;
            }
            Ok(())
        })?;
        if let (Some(stack), Some(data)) = (&engine, &data) {
            let want = obfnet_nn::obfuscate_samples(&stack.subset(&[net])?, data, n)?;
            let worst = want
                .iter()
                .flatten()
                .zip(outs.chunks_exact(d))
                .flat_map(|(w, got)| w.iter().zip(got).map(|(a, b)| (a - b).abs()))
                .fold(0.0f32, f32::max);
            diffs.push(worst);
        }
        // what a device sends: the bundle's output noise (format 3) on top of the net's output
        if rt.output_noise().is_some() {
            let mut rng = obfnet_core::runtime::OsRandom;
            for o in outs.chunks_exact_mut(d) {
                rt.add_output_noise(o, &mut rng)?;
            }
        }
        let norm = rt.normalisation();
        let raw: Vec<f32> = outs.iter().map(|&v| norm.invert(v)).collect();
        outside.push(raw.iter().filter(|r| !(0.0..=255.0).contains(*r)).count() as f64 / raw.len() as f64);
        max_raw.push(raw.iter().copied().fold(f32::MIN, f32::max));
        acc_f32.push(obfnet_nn::server_accuracy_on_inputs(
            model,
            &outs,
            &images.labels,
        )?);
        for o in outs.chunks_exact_mut(d) {
            Wire::U8.round_trip(o, rt.normalisation());
        }
        acc_u8.push(obfnet_nn::server_accuracy_on_inputs(
            model,
            &outs,
            &images.labels,
        )?);
    }
    Ok(EdgeEval {
        weights: rt.weights().manifest_name().into(),
        accuracy_f32_wire: acc_f32,
        accuracy_u8_wire: acc_u8,
        max_abs_diff_vs_engine: engine.map(|_| diffs),
        outside_raw_range: outside,
        max_output_raw: max_raw,
    })
}

impl EdgeEval {
    /// Mean of per-net values.
    pub fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }
}

/// The device-side artifacts of a quickstart run for one architecture.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuickstartEdge {
    /// The int8 bundle written next to the f32 one.
    pub int8_bundle: PathBuf,
    /// Size of the f32 bundle.
    pub f32_bytes: usize,
    /// Size of the int8 bundle.
    pub int8_bytes: usize,
    /// The f32 bundle through the edge runtime.
    pub edge_f32: EdgeEval,
    /// The int8 bundle through the edge runtime.
    pub edge_int8: EdgeEval,
    /// Mean accuracies behind the nets.
    pub mean_accuracy: EdgeMeans,
}

/// Mean accuracy behind the nets, per weights × wire encoding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EdgeMeans {
    /// f32 weights, f32 wire.
    pub f32_weights_f32_wire: f64,
    /// f32 weights, u8 wire.
    pub f32_weights_u8_wire: f64,
    /// int8 weights, f32 wire.
    pub int8_weights_f32_wire: f64,
    /// int8 weights, u8 wire.
    pub int8_weights_u8_wire: f64,
}

/// The device-side artifacts of a quickstart run for one architecture: the int8 bundle next to
/// the f32 one, and the accuracy behind both through the edge runtime with both wire encodings.
///
/// # Errors
/// An invalid bundle, I/O, or a failing evaluation.
pub fn quickstart_edge(
    model: &obfnet_nn::ServerModel,
    f32_path: &Path,
    images: &obfnet_data::LabeledImages,
) -> Result<QuickstartEdge> {
    let (f32_bytes, bundle) = read_bundle(f32_path)?;
    let int8 = bundle.quantize_int8()?;
    let int8_bytes = int8.to_bytes()?;
    let stem = f32_path.file_stem().and_then(|s| s.to_str()).unwrap_or("obfnets");
    let int8_path = f32_path.with_file_name(format!("{stem}-int8.obfb"));
    obfnet_data::write_atomic(&int8_path, &int8_bytes)?;
    let f = evaluate_edge(model, &bundle, images, false)?;
    let q = evaluate_edge(model, &int8, images, false)?;
    let means = EdgeMeans {
        f32_weights_f32_wire: EdgeEval::mean(&f.accuracy_f32_wire),
        f32_weights_u8_wire: EdgeEval::mean(&f.accuracy_u8_wire),
        int8_weights_f32_wire: EdgeEval::mean(&q.accuracy_f32_wire),
        int8_weights_u8_wire: EdgeEval::mean(&q.accuracy_u8_wire),
    };
    say(format!(
        "edge runtime, mean accuracy: f32 {:.2}% | int8 {:.2}% | f32 + u8 wire {:.2}% | int8 + u8 wire {:.2}%; int8 bundle {} ({:.1} MB)",
        means.f32_weights_f32_wire * 100.0,
        means.int8_weights_f32_wire * 100.0,
        means.f32_weights_u8_wire * 100.0,
        means.int8_weights_u8_wire * 100.0,
        int8_path.display(),
        int8_bytes.len() as f64 / 1e6
    ));
    Ok(QuickstartEdge {
        int8_bundle: int8_path,
        f32_bytes: f32_bytes.len(),
        int8_bytes: int8_bytes.len(),
        edge_f32: f,
        edge_int8: q,
        mean_accuracy: means,
    })
}
