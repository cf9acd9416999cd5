//! A minimal, `no_std` reader and writer for the [safetensors] container, limited to the
//! `F32` and `I8` dtypes.
//!
//! Layout: `u64` little-endian header length `N`, `N` bytes of JSON
//! `{"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},...}` (an optional
//! `"__metadata__"` object of string values is allowed and ignored), then the data section.
//!
//! The writer produces what the reference implementation produces: tensors ordered by
//! descending dtype alignment and then by name (so `F32` tensors come first and stay 4-byte
//! aligned in the file), compact JSON, header padded with spaces to a multiple of 8, data
//! contiguous in header order, no `__metadata__`.
//!
//! The reader accepts any safetensors file using these dtypes. It parses a fixed, non-recursive
//! JSON subset (the top-level object, one object per tensor, arrays of integers, and the flat
//! `__metadata__` object), so nesting depth is bounded by the grammar (3), and the header
//! length by [`MAX_HEADER_LEN`]. It checks that every tensor's byte range matches
//! `product(shape) * dtype size`, and that the ranges are in bounds, do not overlap and cover
//! the data section exactly. It never panics, whatever the input.
//!
//! [safetensors]: https://github.com/huggingface/safetensors
//!
//! # Examples
//!
//! ```
//! use obfnet_core::{safetensors, Tensor, TensorData};
//!
//! let tensors = vec![
//!     ("w".to_string(), Tensor { shape: vec![2, 2], data: TensorData::F32(vec![1.0, 2.0, 3.0, 4.0]) }),
//!     ("q".to_string(), Tensor { shape: vec![3], data: TensorData::I8(vec![-1, 0, 1]) }),
//! ];
//! let bytes = safetensors::encode(&tensors)?;
//! let back = safetensors::decode(&bytes)?;
//! assert_eq!(back, tensors); // F32 first, then by name
//! # Ok::<(), obfnet_core::Error>(())
//! ```

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::{DType, Error, Result, Tensor, TensorData, numel_checked};

/// Largest JSON header accepted by [`decode`], in bytes (16 MiB).
pub const MAX_HEADER_LEN: usize = 16 << 20;

const METADATA_KEY: &str = "__metadata__";

/// Encodes named tensors as a safetensors file.
///
/// Tensors are written in the reference order (descending dtype alignment, then name), which
/// for an all-`F32` set is simply sorted by name.
///
/// # Errors
///
/// [`Error::DuplicateTensor`], [`Error::InvalidTensorName`] (empty or `__metadata__`),
/// [`Error::ElementCount`] when a buffer does not match its shape.
pub fn encode(tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    encode_refs(refs)
}

/// [`encode`] over borrowed tensors, so a bundle can be written without copying its weights.
pub(crate) fn encode_refs(mut tensors: Vec<(&str, &Tensor)>) -> Result<Vec<u8>> {
    for (name, t) in &tensors {
        if name.is_empty() || *name == METADATA_KEY {
            return Err(Error::InvalidTensorName {
                tensor: (*name).into(),
                reason: "tensor names must be non-empty and not `__metadata__`",
            });
        }
        let expected = numel_checked(&t.shape).ok_or(Error::TooLarge {
            what: "tensor element count",
            found: u64::MAX,
            limit: usize::MAX as u64,
        })?;
        if expected != t.numel() {
            return Err(Error::ElementCount {
                tensor: (*name).into(),
                expected,
                found: t.numel(),
            });
        }
    }
    tensors.sort_by(|(ln, lt), (rn, rt)| {
        rt.dtype()
            .size_bytes()
            .cmp(&lt.dtype().size_bytes())
            .then_with(|| ln.cmp(rn))
    });
    if let Some(w) = tensors.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::DuplicateTensor {
            tensor: w[0].0.into(),
        });
    }

    let mut header = String::from("{");
    let mut offset = 0usize;
    for (i, (name, t)) in tensors.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        write_json_string(&mut header, name);
        let _ = write!(
            header,
            ":{{\"dtype\":\"{}\",\"shape\":[",
            t.dtype().safetensors_name()
        );
        for (k, d) in t.shape.iter().enumerate() {
            if k > 0 {
                header.push(',');
            }
            let _ = write!(header, "{d}");
        }
        let len = t.numel() * t.dtype().size_bytes();
        let _ = write!(header, "],\"data_offsets\":[{},{}]}}", offset, offset + len);
        offset += len;
    }
    header.push('}');
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }

    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, t) in &tensors {
        t.for_each_le_chunk(|c| out.extend_from_slice(c));
    }
    Ok(out)
}

/// Writes `s` as a JSON string literal, escaping like `serde_json`.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Decodes a safetensors file into named tensors, in data-offset order.
///
/// # Errors
///
/// [`Error::Truncated`], [`Error::TooLarge`] (header over [`MAX_HEADER_LEN`]),
/// [`Error::SafetensorsHeader`] (JSON syntax), [`Error::SafetensorsEntry`],
/// [`Error::UnsupportedDType`], [`Error::DuplicateTensor`], [`Error::TensorByteLength`],
/// [`Error::UncoveredData`].
pub fn decode(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let Some((len_bytes, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(Error::Truncated {
            needed: 8,
            available: bytes.len(),
        });
    };
    let n = u64::from_le_bytes(*len_bytes);
    if n > MAX_HEADER_LEN as u64 {
        return Err(Error::TooLarge {
            what: "safetensors header length",
            found: n,
            limit: MAX_HEADER_LEN as u64,
        });
    }
    // n <= 16 MiB, so this fits a usize on every supported target.
    let n = n as usize;
    let (Some(header), Some(data)) = (rest.get(..n), rest.get(n..)) else {
        return Err(Error::Truncated {
            needed: 8 + n,
            available: bytes.len(),
        });
    };
    let entries = parse_header(header)?;
    build_tensors(entries, data)
}

/// A tensor entry of the header, before its bytes are read.
struct Entry {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

fn build_tensors(mut entries: Vec<Entry>, data: &[u8]) -> Result<Vec<(String, Tensor)>> {
    for e in &entries {
        let bad = |reason| {
            Err(Error::SafetensorsEntry {
                tensor: e.name.clone(),
                reason,
            })
        };
        if e.end < e.start {
            return bad("data_offsets end before they start");
        }
        let expected = numel_checked(&e.shape).and_then(|n| n.checked_mul(e.dtype.size_bytes()));
        let Some(expected) = expected else {
            return bad("shape is too large");
        };
        if e.end - e.start != expected {
            return Err(Error::TensorByteLength {
                tensor: e.name.clone(),
                expected,
                found: e.end - e.start,
            });
        }
        if e.end > data.len() {
            return bad("data_offsets point past the end of the data section");
        }
    }
    entries.sort_by(|a, b| (a.start, a.end, &a.name).cmp(&(b.start, b.end, &b.name)));
    let mut cursor = 0usize;
    for e in &entries {
        if e.start != cursor {
            return Err(Error::SafetensorsEntry {
                tensor: e.name.clone(),
                reason: "data_offsets overlap another tensor or leave a gap",
            });
        }
        cursor = e.end;
    }
    if cursor != data.len() {
        return Err(Error::UncoveredData {
            covered: cursor,
            len: data.len(),
        });
    }

    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let raw = data.get(e.start..e.end).unwrap_or_default();
        let data = match e.dtype {
            DType::F32 => TensorData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            DType::I8 => TensorData::I8(raw.iter().map(|&b| i8::from_le_bytes([b])).collect()),
        };
        out.push((e.name, Tensor { shape: e.shape, data }));
    }
    Ok(out)
}

fn parse_header(header: &[u8]) -> Result<Vec<Entry>> {
    if let Err(e) = core::str::from_utf8(header) {
        return Err(Error::SafetensorsHeader {
            offset: e.valid_up_to(),
            reason: "header is not valid UTF-8",
        });
    }
    let mut p = Json { s: header, pos: 0 };
    let mut entries = Vec::new();
    let mut names = BTreeSet::new();
    let mut seen_metadata = false;

    p.expect(b'{', "expected `{` at the start of the header")?;
    if !p.eat(b'}') {
        loop {
            let name = p.string()?;
            p.expect(b':', "expected `:` after a key")?;
            if name == METADATA_KEY {
                if seen_metadata {
                    return Err(Error::DuplicateTensor { tensor: name });
                }
                seen_metadata = true;
                p.string_map()?;
            } else {
                if name.is_empty() {
                    // `encode` refuses it too: a file this crate reads, it can write back.
                    return Err(Error::InvalidTensorName {
                        tensor: name,
                        reason: "tensor names must be non-empty and not `__metadata__`",
                    });
                }
                if names.contains(&name) {
                    return Err(Error::DuplicateTensor { tensor: name });
                }
                let entry = p.entry(name)?;
                names.insert(entry.name.clone());
                entries.push(entry);
            }
            if p.eat(b',') {
                continue;
            }
            p.expect(b'}', "expected `,` or `}` after a tensor entry")?;
            break;
        }
    }
    p.ws();
    if p.pos != header.len() {
        return Err(p.err("unexpected characters after the header object"));
    }
    Ok(entries)
}

/// A cursor over the JSON header. Every method returns an error instead of panicking.
struct Json<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Json<'_> {
    fn err(&self, reason: &'static str) -> Error {
        Error::SafetensorsHeader {
            offset: self.pos,
            reason,
        }
    }

    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.s.get(self.pos).copied();
        if b.is_some() {
            self.pos += 1;
        }
        b
    }

    /// Skips whitespace and consumes `b` if it comes next.
    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8, reason: &'static str) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.err(reason))
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .bump()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.err("invalid \\u escape"))?;
            v = (v << 4) | d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String> {
        self.expect(b'"', "expected a string")?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.bump() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    let c = match self.bump() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !(self.bump() == Some(b'\\') && self.bump() == Some(b'u')) {
                                    return Err(self.err("unpaired surrogate in \\u escape"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("unpaired surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)
                                .ok_or_else(|| self.err("unpaired surrogate in \\u escape"))?
                        }
                        _ => return Err(self.err("invalid escape sequence")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                Some(b) if b < 0x20 => return Err(self.err("control character in string")),
                Some(b) => out.push(b),
            }
        }
        // The header was checked to be UTF-8 and escapes produce UTF-8, so this cannot fail;
        // map the error anyway rather than assume it.
        String::from_utf8(out).map_err(|_| self.err("string is not valid UTF-8"))
    }

    /// A non-negative JSON integer (no sign, fraction or exponent; no leading zeros).
    fn uint(&mut self) -> Result<usize> {
        self.ws();
        let start = self.pos;
        let mut v = 0usize;
        while let Some(&b) = self.s.get(self.pos) {
            if !b.is_ascii_digit() {
                break;
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(b - b'0')))
                .ok_or_else(|| self.err("integer is too large"))?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err("expected a non-negative integer"));
        }
        if self.pos - start > 1 && self.s.get(start) == Some(&b'0') {
            return Err(self.err("integer has a leading zero"));
        }
        if matches!(self.s.get(self.pos), Some(b'.' | b'e' | b'E')) {
            return Err(self.err("expected an integer, found a fraction or exponent"));
        }
        Ok(v)
    }

    fn uint_array(&mut self) -> Result<Vec<usize>> {
        self.expect(b'[', "expected `[`")?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Ok(out);
        }
        loop {
            out.push(self.uint()?);
            if self.eat(b',') {
                continue;
            }
            self.expect(b']', "expected `,` or `]` in an array")?;
            return Ok(out);
        }
    }

    /// The `__metadata__` object: string keys to string values, contents discarded.
    fn string_map(&mut self) -> Result<()> {
        self.expect(b'{', "`__metadata__` must be an object")?;
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            self.string()?;
            self.expect(b':', "expected `:` after a key")?;
            self.string()?;
            if self.eat(b',') {
                continue;
            }
            return self.expect(b'}', "expected `,` or `}` in `__metadata__`");
        }
    }

    /// One tensor entry: `{"dtype":..,"shape":[..],"data_offsets":[a,b]}` in any key order.
    fn entry(&mut self, name: String) -> Result<Entry> {
        let entry_err = |name: &String, reason| Error::SafetensorsEntry {
            tensor: name.clone(),
            reason,
        };
        self.expect(b'{', "expected a tensor entry object")?;
        let mut dtype = None;
        let mut shape = None;
        let mut offsets = None;
        if !self.eat(b'}') {
            loop {
                let key = self.string()?;
                self.expect(b':', "expected `:` after a key")?;
                match key.as_str() {
                    "dtype" if dtype.is_none() => {
                        let s = self.string()?;
                        dtype = Some(match s.as_str() {
                            "F32" => DType::F32,
                            "I8" => DType::I8,
                            _ => {
                                return Err(Error::UnsupportedDType {
                                    tensor: name,
                                    dtype: s,
                                });
                            }
                        });
                    }
                    "shape" if shape.is_none() => shape = Some(self.uint_array()?),
                    "data_offsets" if offsets.is_none() => {
                        let at = self.pos;
                        match self.uint_array()?.as_slice() {
                            &[a, b] => offsets = Some((a, b)),
                            _ => {
                                self.pos = at;
                                return Err(entry_err(&name, "data_offsets must hold two integers"));
                            }
                        }
                    }
                    "dtype" | "shape" | "data_offsets" => {
                        return Err(entry_err(&name, "duplicate key in tensor entry"));
                    }
                    _ => return Err(entry_err(&name, "unknown key in tensor entry")),
                }
                if self.eat(b',') {
                    continue;
                }
                self.expect(b'}', "expected `,` or `}` in a tensor entry")?;
                break;
            }
        }
        let (Some(dtype), Some(shape), Some((start, end))) = (dtype, shape, offsets) else {
            return Err(entry_err(
                &name,
                "entry needs `dtype`, `shape` and `data_offsets`",
            ));
        };
        Ok(Entry {
            name,
            dtype,
            shape,
            start,
            end,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn f32t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: TensorData::F32(data.to_vec()),
        }
    }

    /// Builds a file from a raw header string and data bytes.
    fn raw(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn encodes_like_the_reference_writer() {
        let tensors = vec![
            ("b".to_string(), f32t(&[2], &[1.0, 2.0])),
            ("a".to_string(), f32t(&[1, 1], &[3.0])),
        ];
        let bytes = encode(&tensors).unwrap();
        let header = r#"{"a":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
        let mut padded = header.to_string();
        while !padded.len().is_multiple_of(8) {
            padded.push(' ');
        }
        let mut data = 3.0f32.to_le_bytes().to_vec();
        data.extend_from_slice(&1.0f32.to_le_bytes());
        data.extend_from_slice(&2.0f32.to_le_bytes());
        assert_eq!(bytes, raw(&padded, &data));
    }

    #[test]
    fn round_trip_is_byte_identical() {
        let tensors = vec![
            (
                "z".to_string(),
                Tensor {
                    shape: vec![3],
                    data: TensorData::I8(vec![-128, 0, 127]),
                },
            ),
            (
                "weird \"name\"\n\\/\u{1}é😀".to_string(),
                f32t(&[2, 1], &[-0.0, f32::MAX]),
            ),
            ("empty".to_string(), f32t(&[0, 4], &[])),
            ("scalar".to_string(), f32t(&[], &[42.0])),
        ];
        let bytes = encode(&tensors).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), 4);
        for (name, t) in &tensors {
            assert!(back.iter().any(|(n, b)| n == name && b == t), "{name}");
        }
        assert_eq!(encode(&back).unwrap(), bytes);
        // F32 tensors come before I8 ones.
        assert_eq!(back.last().unwrap().0, "z");
    }

    #[test]
    fn reads_foreign_json_styles() {
        let data: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .chain([7u8])
            .collect();
        let header = "\n { \"__metadata__\" : {\"format\":\"pt\", \"k\\u00e9\":\"v\"},\r\n\
            \"q\":{\"data_offsets\":[ 8 , 9 ],\"dtype\":\"I8\",\"shape\":[1]} ,\t\
            \"\\u0077\\/x\\ud83d\\ude00\" : { \"shape\" : [ 2 ] , \"dtype\" : \"F32\", \"data_offsets\":[0,8]}}   ";
        let back = decode(&raw(header, &data)).unwrap();
        assert_eq!(back[0], ("w/x😀".to_string(), f32t(&[2], &[1.5, -2.0])));
        assert_eq!(
            back[1],
            (
                "q".to_string(),
                Tensor {
                    shape: vec![1],
                    data: TensorData::I8(vec![7])
                }
            )
        );
    }

    #[test]
    fn rejections_are_typed() {
        let four = [0u8; 4];
        let entry = |body: &str| alloc::format!("{{\"t\":{{{body}}}}}");
        type Check = fn(&Error) -> bool;
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (vec![1, 2, 3], |e| {
                matches!(
                    e,
                    Error::Truncated {
                        needed: 8,
                        available: 3
                    }
                )
            }),
            (raw("{}", &[]).get(..9).unwrap().to_vec(), |e| {
                matches!(e, Error::Truncated { .. })
            }),
            ((u64::MAX).to_le_bytes().to_vec(), |e| {
                matches!(e, Error::TooLarge { .. })
            }),
            (raw("{} x", &[]), |e| {
                matches!(e, Error::SafetensorsHeader { offset: 3, .. })
            }),
            (raw("[]", &[]), |e| {
                matches!(e, Error::SafetensorsHeader { offset: 0, .. })
            }),
            (raw("{\"t\":1}", &[]), |e| {
                matches!(e, Error::SafetensorsHeader { .. })
            }),
            (raw("{\"t\\x\":{}}", &[]), |e| {
                matches!(e, Error::SafetensorsHeader { .. })
            }),
            (raw("{\"\\ud800\":{}}", &[]), |e| {
                matches!(e, Error::SafetensorsHeader { .. })
            }),
            (raw("{\"a\u{1}\":{}}", &[]), |e| {
                matches!(e, Error::SafetensorsHeader { .. })
            }),
            (
                raw(&entry(r#""dtype":"F16","shape":[2],"data_offsets":[0,4]"#), &four),
                |e| matches!(e, Error::UnsupportedDType { .. }),
            ),
            (
                raw(&entry(r#""dtype":"F32","shape":[2],"data_offsets":[0,4]"#), &four),
                |e| {
                    matches!(
                        e,
                        Error::TensorByteLength {
                            expected: 8,
                            found: 4,
                            ..
                        }
                    )
                },
            ),
            (
                raw(
                    &entry(r#""dtype":"F32","shape":[1],"data_offsets":[0,4]"#),
                    &[0; 5],
                ),
                |e| matches!(e, Error::UncoveredData { covered: 4, len: 5 }),
            ),
            (
                raw(
                    &entry(r#""dtype":"F32","shape":[1],"data_offsets":[4,8]"#),
                    &[0; 8],
                ),
                |e| matches!(e, Error::SafetensorsEntry { .. }),
            ),
            (
                raw(
                    &entry(r#""dtype":"F32","shape":[1],"data_offsets":[0,4]"#),
                    &[0; 3],
                ),
                |e| matches!(e, Error::SafetensorsEntry { .. }),
            ),
            (
                raw(&entry(r#""dtype":"F32","shape":[1],"data_offsets":[4,0]"#), &four),
                |e| matches!(e, Error::SafetensorsEntry { .. }),
            ),
            (
                raw(&entry(r#""dtype":"F32","shape":[1],"data_offsets":[0]"#), &four),
                |e| matches!(e, Error::SafetensorsEntry { .. }),
            ),
            (
                raw(
                    &entry(r#""dtype":"F32","shape":[1.0],"data_offsets":[0,4]"#),
                    &four,
                ),
                |e| matches!(e, Error::SafetensorsHeader { .. }),
            ),
            (
                raw(
                    &entry(r#""dtype":"F32","shape":[-1],"data_offsets":[0,4]"#),
                    &four,
                ),
                |e| matches!(e, Error::SafetensorsHeader { .. }),
            ),
            (
                raw(
                    &entry(r#""dtype":"F32","shape":[01],"data_offsets":[0,4]"#),
                    &four,
                ),
                |e| matches!(e, Error::SafetensorsHeader { .. }),
            ),
            (
                raw(
                    &entry(r#""dtype":"F32","shape":[99999999999999999999999],"data_offsets":[0,4]"#),
                    &four,
                ),
                |e| matches!(e, Error::SafetensorsHeader { .. }),
            ),
            (
                raw(
                    &entry(
                        r#""dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]"#,
                    ),
                    &four,
                ),
                |e| matches!(e, Error::SafetensorsEntry { .. }),
            ),
            (raw(&entry(r#""dtype":"F32","shape":[1]"#), &four), |e| {
                matches!(e, Error::SafetensorsEntry { .. })
            }),
            (
                raw(
                    &entry(r#""dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]"#),
                    &four,
                ),
                |e| matches!(e, Error::SafetensorsEntry { .. }),
            ),
            (
                raw(
                    &entry(r#""dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1"#),
                    &four,
                ),
                |e| matches!(e, Error::SafetensorsEntry { .. }),
            ),
            (
                raw(
                    r#"{"t":{"dtype":"I8","shape":[1],"data_offsets":[0,1]},"t":{"dtype":"I8","shape":[1],"data_offsets":[1,2]}}"#,
                    &[0; 2],
                ),
                |e| matches!(e, Error::DuplicateTensor { .. }),
            ),
            // Found by libFuzzer (fuzz target `safetensors`, 2026-12-07): an empty tensor name
            // decoded, but `encode` refuses it, so the file did not round-trip.
            (
                raw(r#"{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, &four),
                |e| matches!(e, Error::InvalidTensorName { .. }),
            ),
            (raw("{\"__metadata__\":{\"a\":1}}", &[]), |e| {
                matches!(e, Error::SafetensorsHeader { .. })
            }),
            (raw("{\"__metadata__\":{},\"__metadata__\":{}}", &[]), |e| {
                matches!(e, Error::DuplicateTensor { .. })
            }),
            (raw("{}", &[0]), |e| {
                matches!(e, Error::UncoveredData { covered: 0, len: 1 })
            }),
            (
                {
                    let mut v = raw("{}", &[]);
                    v[8] = 0xff;
                    v
                },
                |e| matches!(e, Error::SafetensorsHeader { .. }),
            ),
        ];
        for (i, (bytes, check)) in cases.iter().enumerate() {
            match decode(bytes) {
                Err(e) => assert!(check(&e), "case {i}: unexpected error {e:?}"),
                Ok(t) => panic!("case {i}: accepted {t:?}"),
            }
        }
    }

    #[test]
    fn empty_file_round_trips() {
        let bytes = encode(&[]).unwrap();
        assert_eq!(bytes, raw("{}      ", &[]));
        assert_eq!(decode(&bytes).unwrap(), vec![]);
    }

    #[test]
    fn encoder_rejects_bad_input() {
        let t = f32t(&[2], &[1.0]);
        assert!(matches!(
            encode(&[("t".into(), t)]),
            Err(Error::ElementCount {
                expected: 2,
                found: 1,
                ..
            })
        ));
        let t = f32t(&[1], &[1.0]);
        assert!(matches!(
            encode(&[("t".into(), t.clone()), ("t".into(), t.clone())]),
            Err(Error::DuplicateTensor { .. })
        ));
        assert!(matches!(
            encode(&[("__metadata__".into(), t.clone())]),
            Err(Error::InvalidTensorName { .. })
        ));
        assert!(matches!(
            encode(&[(String::new(), t)]),
            Err(Error::InvalidTensorName { .. })
        ));
    }

    #[test]
    fn zero_sized_tensors_may_share_an_offset() {
        let tensors = vec![
            ("a".to_string(), f32t(&[0], &[])),
            ("b".to_string(), f32t(&[0], &[])),
            ("c".to_string(), f32t(&[1], &[1.0])),
        ];
        let bytes = encode(&tensors).unwrap();
        assert_eq!(decode(&bytes).unwrap(), tensors);
    }

    /// xorshift64*, enough to drive a no-panic fuzz loop without a rand dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn decode_never_panics() {
        let seed = encode(&[
            ("a".to_string(), f32t(&[2, 2], &[1.0, 2.0, 3.0, 4.0])),
            (
                "b".to_string(),
                Tensor {
                    shape: vec![3],
                    data: TensorData::I8(vec![1, 2, 3]),
                },
            ),
        ])
        .unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let mut bytes = seed.clone();
            match rng.below(4) {
                0 => bytes.truncate(rng.below(seed.len())),
                1 => {
                    for _ in 0..=rng.below(4) {
                        let i = rng.below(bytes.len());
                        bytes[i] ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    // Replace a byte of the JSON with a structural character.
                    let i = 8 + rng.below(seed.len() - 8);
                    bytes[i] = b"{}[],:\"\\0123456789 eu-"[rng.below(22)];
                }
                _ => {
                    let len = rng.below(64);
                    bytes = (0..len).map(|_| rng.next() as u8).collect();
                    if len >= 8 && rng.below(2) == 0 {
                        bytes[..8].copy_from_slice(&((len - 8) as u64).to_le_bytes());
                    }
                }
            }
            let _ = decode(&bytes);
        }
    }
}
