//! The manifest's line-oriented text form: rendering and parsing (grammar in `FORMAT.md`).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use super::validate::{check_version, token_problem};
use super::*;

impl Manifest {
    /// Renders the manifest in its text form (see `FORMAT.md`).
    ///
    /// This does not validate: text rendered from a manifest that fails
    /// [`Manifest::validate`] (e.g. a name containing a space) will not parse back.
    /// [`crate::Bundle::to_bytes`] validates before writing.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail, so the fmt::Results below are ignored.
        let _ = writeln!(s, "obfnet-bundle {}", self.format_version);
        let _ = writeln!(s, "created-by {}", self.created_by);
        let _ = writeln!(s, "dataset {}", self.dataset);
        let _ = writeln!(
            s,
            "input shape={} dtype={}",
            join_dims(&self.input.shape),
            self.input.dtype.manifest_name()
        );
        let n = &self.normalisation;
        let _ = writeln!(s, "normalise scale={} mean={} std={}", n.scale, n.mean, n.std);
        let _ = writeln!(
            s,
            "output shape={} dtype={}",
            join_dims(&self.output.shape),
            self.output.dtype.manifest_name()
        );
        if self.format_version >= 2 {
            let _ = writeln!(s, "weights dtype={}", self.weights.manifest_name());
        }
        if self.format_version >= 3 {
            match self.output_noise {
                Some(n) => {
                    let _ = writeln!(
                        s,
                        "output-noise kind={} sigma={}",
                        crate::OutputNoise::KIND,
                        n.sigma
                    );
                }
                None => {
                    let _ = writeln!(s, "output-noise kind=none");
                }
            }
        }
        let _ = writeln!(s, "server-model sha256={}", hex(&self.server_model_sha256));
        let _ = writeln!(s, "nets {}", self.nets.len());
        for (i, net) in self.nets.iter().enumerate() {
            let _ = writeln!(
                s,
                "net index={i} name={} arch={} seed={} layers={} sha256={}",
                net.name,
                net.arch,
                net.seed,
                net.layers.len(),
                hex(&net.sha256)
            );
            for (j, layer) in net.layers.iter().enumerate() {
                match *layer {
                    LayerSpec::Dense { inputs, outputs, act } => {
                        let _ = writeln!(
                            s,
                            "layer net={i} index={j} kind=dense in={inputs} out={outputs} act={}",
                            act.name()
                        );
                    }
                    LayerSpec::Conv2d {
                        in_channels,
                        out_channels,
                        kernel,
                        stride,
                        padding,
                        in_height,
                        in_width,
                        act,
                    } => {
                        let _ = writeln!(
                            s,
                            "layer net={i} index={j} kind=conv2d in_ch={in_channels} \
                             out_ch={out_channels} kernel={kernel} stride={stride} pad={padding} \
                             in_h={in_height} in_w={in_width} act={}",
                            act.name()
                        );
                    }
                }
            }
        }
        s.push_str("end\n");
        s
    }

    /// Parses the text form and validates the result (see [`Manifest::validate`]).
    ///
    /// Records must appear in the order of `FORMAT.md`; the `key=value` tokens within a record
    /// may come in any order but each exactly once.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] (with the 1-based line) for syntax errors, unknown records or keys,
    /// duplicate or missing keys, values that do not parse, out-of-range values, wrong counts
    /// and out-of-order indices; [`Error::TooLarge`] for text over 1 MiB;
    /// [`Error::UnsupportedVersion`] for a version other than [`FORMAT_VERSION`](crate::FORMAT_VERSION); and every
    /// error of [`Manifest::validate`].
    pub fn parse(text: &str) -> Result<Manifest> {
        if text.len() > crate::MAX_MANIFEST_LEN {
            return Err(Error::TooLarge {
                what: "manifest length",
                found: text.len() as u64,
                limit: crate::MAX_MANIFEST_LEN as u64,
            });
        }
        let mut r = Reader::new(text)?;

        let rec = r.record("obfnet-bundle")?;
        let version = rec.single_value()?;
        let format_version: u32 = rec.uint(version)?;
        check_version(format_version)?;

        let rec = r.record("created-by")?;
        let created_by = rec.token(rec.single_value()?)?.to_string();
        let rec = r.record("dataset")?;
        let dataset = rec.token(rec.single_value()?)?.to_string();

        let rec = r.record("input")?;
        let f = rec.fields(&["shape", "dtype"])?;
        let input = TensorSpec {
            shape: rec.shape(f.get("shape")?)?,
            dtype: rec.dtype(f.get("dtype")?)?,
        };

        let rec = r.record("normalise")?;
        let f = rec.fields(&["scale", "mean", "std"])?;
        let normalisation = Normalisation {
            scale: rec.float(f.get("scale")?)?,
            mean: rec.float(f.get("mean")?)?,
            std: rec.float(f.get("std")?)?,
        };

        let rec = r.record("output")?;
        let f = rec.fields(&["shape", "dtype"])?;
        let output = TensorSpec {
            shape: rec.shape(f.get("shape")?)?,
            dtype: rec.dtype(f.get("dtype")?)?,
        };

        let weights = if format_version >= 2 {
            let rec = r.record("weights")?;
            let f = rec.fields(&["dtype"])?;
            rec.dtype(f.get("dtype")?)?
        } else {
            DType::F32
        };

        let output_noise = if format_version >= 3 {
            let rec = r.record("output-noise")?;
            match rec.tokens.as_slice() {
                ["kind=none"] => None,
                [kind, _] if *kind == "kind=irwin-hall12" => {
                    let f = rec.fields(&["kind", "sigma"])?;
                    let noise = crate::OutputNoise {
                        sigma: rec.float(f.get("sigma")?)?,
                    };
                    noise.validate()?;
                    Some(noise)
                }
                _ => {
                    return Err(rec.err(
                        "expected `output-noise kind=none` or `output-noise kind=irwin-hall12 sigma=S`",
                    ));
                }
            }
        } else {
            None
        };

        let rec = r.record("server-model")?;
        let f = rec.fields(&["sha256"])?;
        let server_model_sha256 = rec.digest(f.get("sha256")?)?;

        let rec = r.record("nets")?;
        let net_count: usize = rec.uint(rec.single_value()?)?;
        if net_count == 0 || net_count > MAX_NETS {
            return Err(rec.err("the net count must be between 1 and 1024"));
        }

        let mut nets = Vec::new();
        for i in 0..net_count {
            let rec = r.record("net")?;
            let f = rec.fields(&["index", "name", "arch", "seed", "layers", "sha256"])?;
            let index: usize = rec.uint(f.get("index")?)?;
            if index != i {
                return Err(rec.err(format!("expected net index {i}, found {index}")));
            }
            let name = rec.token(f.get("name")?)?.to_string();
            let arch = rec.token(f.get("arch")?)?.to_string();
            let seed: u64 = rec.uint(f.get("seed")?)?;
            let layer_count: usize = rec.uint(f.get("layers")?)?;
            if layer_count == 0 || layer_count > MAX_LAYERS {
                return Err(rec.err("the layer count must be between 1 and 1024"));
            }
            let sha256 = rec.digest(f.get("sha256")?)?;
            let mut layers = Vec::new();
            for j in 0..layer_count {
                layers.push(parse_layer(&r.record("layer")?, i, j)?);
            }
            nets.push(NetSpec {
                name,
                arch,
                seed,
                layers,
                sha256,
            });
        }

        let rec = r.record("end")?;
        if !rec.tokens.is_empty() {
            return Err(rec.err("`end` takes no values"));
        }
        r.finish()?;

        let manifest = Manifest {
            format_version,
            created_by,
            dataset,
            input,
            normalisation,
            output,
            weights,
            output_noise,
            server_model_sha256,
            nets,
        };
        manifest.validate()?;
        Ok(manifest)
    }
}

fn parse_layer(rec: &Record<'_>, net: usize, index: usize) -> Result<LayerSpec> {
    const DENSE: &[&str] = &["net", "index", "kind", "in", "out", "act"];
    const CONV: &[&str] = &[
        "net", "index", "kind", "in_ch", "out_ch", "kernel", "stride", "pad", "in_h", "in_w", "act",
    ];
    let kind = rec
        .tokens
        .iter()
        .filter_map(|t| t.strip_prefix("kind="))
        .next()
        .ok_or_else(|| rec.err("missing key `kind`"))?;
    let f = match kind {
        "dense" => rec.fields(DENSE)?,
        "conv2d" => rec.fields(CONV)?,
        other => return Err(rec.err(format!("unknown layer kind `{other}` (expected dense or conv2d)"))),
    };
    let found_net: usize = rec.uint(f.get("net")?)?;
    if found_net != net {
        return Err(rec.err(format!("expected a layer of net {net}, found net={found_net}")));
    }
    let found_index: usize = rec.uint(f.get("index")?)?;
    if found_index != index {
        return Err(rec.err(format!("expected layer index {index}, found {found_index}")));
    }
    let act = match f.get("act")? {
        "relu" => Activation::Relu,
        "none" => Activation::None,
        "clip" => Activation::Clip,
        other => {
            return Err(rec.err(format!(
                "unknown activation `{other}` (expected relu, none or clip)"
            )));
        }
    };
    Ok(if kind == "dense" {
        LayerSpec::Dense {
            inputs: rec.dim(f.get("in")?)?,
            outputs: rec.dim(f.get("out")?)?,
            act,
        }
    } else {
        let padding: usize = rec.uint(f.get("pad")?)?;
        if padding > MAX_DIM {
            return Err(rec.err("pad exceeds the limit of 1<<20"));
        }
        LayerSpec::Conv2d {
            in_channels: rec.dim(f.get("in_ch")?)?,
            out_channels: rec.dim(f.get("out_ch")?)?,
            kernel: rec.dim(f.get("kernel")?)?,
            stride: rec.dim(f.get("stride")?)?,
            padding,
            in_height: rec.dim(f.get("in_h")?)?,
            in_width: rec.dim(f.get("in_w")?)?,
            act,
        }
    })
}

fn join_dims(shape: &[usize]) -> String {
    let mut s = String::new();
    for (i, d) in shape.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{d}");
    }
    s
}

/// Known record kinds, for "unknown record" versus "record out of place" messages.
const RECORD_KINDS: &[&str] = &[
    "obfnet-bundle",
    "created-by",
    "dataset",
    "input",
    "normalise",
    "output",
    "weights",
    "output-noise",
    "server-model",
    "nets",
    "net",
    "layer",
    "end",
];

/// Walks the manifest line by line.
struct Reader<'a> {
    lines: core::str::Split<'a, char>,
    line: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Result<Self> {
        let Some(body) = text.strip_suffix('\n') else {
            let line = text.split('\n').count();
            return Err(Error::Manifest {
                line,
                reason: "the last line must end with \\n".into(),
            });
        };
        Ok(Reader {
            lines: body.split('\n'),
            line: 0,
        })
    }

    /// Reads the next line, which must be a record of kind `kind`.
    fn record(&mut self, kind: &'static str) -> Result<Record<'a>> {
        self.line += 1;
        let line = self.line;
        let err = |reason: String| Error::Manifest { line, reason };
        let text = self
            .lines
            .next()
            .ok_or_else(|| err(format!("unexpected end of manifest, expected a `{kind}` record")))?;
        if let Some(c) = text.chars().find(|&c| c != ' ' && !c.is_ascii_graphic()) {
            return Err(err(format!(
                "character {c:?} is not allowed (printable ASCII and single spaces only)"
            )));
        }
        let mut parts = text.split(' ');
        let found = parts.next().unwrap_or_default();
        let tokens: Vec<&'a str> = parts.collect();
        if found.is_empty() || tokens.iter().any(|t| t.is_empty()) {
            return Err(err(
                "empty line or empty token (tokens are separated by exactly one space)".into(),
            ));
        }
        if found != kind {
            return Err(err(if RECORD_KINDS.contains(&found) {
                format!("expected a `{kind}` record, found `{found}`")
            } else {
                format!("unknown record kind `{found}` (expected `{kind}`)")
            }));
        }
        Ok(Record { line, kind, tokens })
    }

    /// Checks that nothing follows the `end` record.
    fn finish(mut self) -> Result<()> {
        match self.lines.next() {
            None => Ok(()),
            Some(_) => Err(Error::Manifest {
                line: self.line + 1,
                reason: "unexpected content after the `end` record".into(),
            }),
        }
    }
}

/// One manifest line split into its kind and value tokens.
struct Record<'a> {
    line: usize,
    kind: &'static str,
    tokens: Vec<&'a str>,
}

/// The `key=value` tokens of a record, checked against the record's allowed keys.
struct Fields<'r, 'a> {
    rec: &'r Record<'a>,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'_, 'a> {
    fn get(&self, key: &str) -> Result<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, v)| v)
            .ok_or_else(|| {
                self.rec
                    .err(format!("missing key `{key}` in `{}` record", self.rec.kind))
            })
    }
}

impl<'a> Record<'a> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Manifest {
            line: self.line,
            reason: reason.into(),
        }
    }

    /// The only token of a positional record such as `nets 2`.
    fn single_value(&self) -> Result<&'a str> {
        match self.tokens.as_slice() {
            [v] => Ok(v),
            _ => Err(self.err(format!("`{}` takes exactly one value", self.kind))),
        }
    }

    fn fields<'r>(&'r self, allowed: &[&str]) -> Result<Fields<'r, 'a>> {
        let mut pairs: Vec<(&'a str, &'a str)> = Vec::with_capacity(self.tokens.len());
        for tok in &self.tokens {
            let (k, v) = tok
                .split_once('=')
                .ok_or_else(|| self.err(format!("expected a key=value token, found `{tok}`")))?;
            if !allowed.contains(&k) {
                return Err(self.err(format!("unknown key `{k}` in `{}` record", self.kind)));
            }
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(self.err(format!("duplicate key `{k}`")));
            }
            if v.is_empty() {
                return Err(self.err(format!("empty value for key `{k}`")));
            }
            pairs.push((k, v));
        }
        Ok(Fields { rec: self, pairs })
    }

    /// A canonical unsigned decimal: digits only, no sign, no leading zeros.
    fn uint<T: TryFrom<u64>>(&self, v: &str) -> Result<T> {
        let canonical =
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
        v.parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .and_then(|x| T::try_from(x).ok())
            .ok_or_else(|| self.err(format!("`{v}` is not a valid unsigned integer here")))
    }

    /// A size: integer in `1..=MAX_DIM`.
    fn dim(&self, v: &str) -> Result<usize> {
        let d: usize = self.uint(v)?;
        if d == 0 || d > MAX_DIM {
            return Err(self.err(format!("size `{v}` must be between 1 and 1<<20")));
        }
        Ok(d)
    }

    fn shape(&self, v: &str) -> Result<Vec<usize>> {
        let mut dims = Vec::new();
        for part in v.split(',') {
            if dims.len() == MAX_RANK {
                return Err(self.err("shapes have at most 8 dimensions"));
            }
            dims.push(self.dim(part)?);
        }
        Ok(dims)
    }

    fn float(&self, v: &str) -> Result<f32> {
        match v.parse::<f32>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(self.err(format!("`{v}` is not a finite number"))),
        }
    }

    fn dtype(&self, v: &str) -> Result<DType> {
        match v {
            "f32" => Ok(DType::F32),
            "i8" => Ok(DType::I8),
            other => Err(self.err(format!("unknown dtype `{other}` (expected f32 or i8)"))),
        }
    }

    fn digest(&self, v: &str) -> Result<[u8; 32]> {
        parse_hex32(v).ok_or_else(|| self.err("sha256 must be 64 hexadecimal digits"))
    }

    fn token(&self, v: &'a str) -> Result<&'a str> {
        match token_problem(v) {
            Some(reason) => Err(self.err(format!("`{v}` {reason}"))),
            None => Ok(v),
        }
    }
}
