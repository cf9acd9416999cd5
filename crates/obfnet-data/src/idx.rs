//! The IDX file format (as used by MNIST and Fashion-MNIST): parsing, encoding, and reading
//! plain or gzip-compressed files with a size cap.
//!
//! Layout: two zero bytes, a data-type byte (`0x08` = u8, the only one supported), a byte with
//! the number of dimensions, then one big-endian `u32` per dimension, then the data, row-major.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The path shown in errors from the path-free parsers.
pub const MEMORY_PATH: &str = "<memory>";

/// The largest file, or decompressed content, the readers accept: 256 MiB.
///
/// The MNIST training images are 47 MB, so this leaves ample room while keeping a gzip bomb
/// from eating memory.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The largest image side (rows or columns) accepted.
pub const MAX_SIDE: u32 = 4096;

/// The IDX data-type byte for unsigned bytes.
const DTYPE_U8: u8 = 0x08;

/// Gzip's two magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Parses an IDX images file (3-D, u8) held in memory: returns `(n, rows, cols, pixels)`, with
/// `pixels.len() == n * rows * cols`, image-major then row-major.
///
/// Gzip-compressed bytes (starting with `1f 8b`) are decompressed first, up to
/// [`MAX_FILE_BYTES`]. Errors name the path [`MEMORY_PATH`].
///
/// # Errors
/// Any header, dimension or length problem, see [`Error`].
pub fn parse_idx_images(bytes: &[u8]) -> Result<(usize, usize, usize, Vec<u8>)> {
    let path = Path::new(MEMORY_PATH);
    let bytes = maybe_gunzip(bytes, path, false, MAX_FILE_BYTES)?;
    images_from_bytes(&bytes, path)
}

/// Parses an IDX labels file (1-D, u8) held in memory.
///
/// Gzip-compressed bytes are decompressed first, as in [`parse_idx_images`]. The label *values*
/// are not checked here (this is the raw format reader); [`read_split`](crate::read_split)
/// checks them against the number of classes.
///
/// # Errors
/// Any header, dimension or length problem, see [`Error`].
pub fn parse_idx_labels(bytes: &[u8]) -> Result<Vec<u8>> {
    let path = Path::new(MEMORY_PATH);
    let bytes = maybe_gunzip(bytes, path, false, MAX_FILE_BYTES)?;
    labels_from_bytes(&bytes, path)
}

/// Encodes `pixels` (image-major, row-major, `rows x cols` each) as an IDX images file.
///
/// The image count written is `pixels.len() / (rows * cols)` (0 when `rows * cols == 0`), and
/// dimensions above `u32::MAX` are saturated. This never panics: inconsistent input (a pixel
/// count that is not a multiple of `rows * cols`, zero sides) yields a file that
/// [`parse_idx_images`] rejects, which is handy for negative tests.
pub fn encode_idx_images(rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let n = pixels.len().checked_div(rows.saturating_mul(cols)).unwrap_or(0);
    encode_idx_u8(&[n, rows, cols], pixels)
}

/// Encodes `labels` as an IDX labels file (1-D, u8).
pub fn encode_idx_labels(labels: &[u8]) -> Vec<u8> {
    encode_idx_u8(&[labels.len()], labels)
}

/// Encodes an IDX u8 file with the given dimensions (saturated to `u32`) and data, as is.
/// More than 255 dimensions are cut to 255.
pub(crate) fn encode_idx_u8(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let ndims = dims.len().min(usize::from(u8::MAX));
    let mut out = Vec::with_capacity(4 + 4 * ndims + data.len());
    out.extend_from_slice(&[0, 0, DTYPE_U8, u8::try_from(ndims).unwrap_or(u8::MAX)]);
    for &d in &dims[..ndims] {
        out.extend_from_slice(&u32::try_from(d).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Parses images from (already decompressed) bytes; `path` is for errors.
pub(crate) fn images_from_bytes(bytes: &[u8], path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let (dims, data) = parse_idx_u8(bytes, path, &[u32::MAX, MAX_SIDE, MAX_SIDE])?;
    let [n, rows, cols] = [dims[0], dims[1], dims[2]].map(|d| d as usize);
    Ok((n, rows, cols, data.to_vec()))
}

/// Parses labels from (already decompressed) bytes; `path` is for errors.
pub(crate) fn labels_from_bytes(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let (_dims, data) = parse_idx_u8(bytes, path, &[u32::MAX])?;
    Ok(data.to_vec())
}

/// Checks an IDX u8 header with `max_dims.len()` dimensions, each non-zero and at most the
/// matching `max_dims` entry, and returns the dimensions and the data, whose length is checked
/// to be exactly their product.
fn parse_idx_u8<'a>(bytes: &'a [u8], path: &Path, max_dims: &[u32]) -> Result<(Vec<u32>, &'a [u8])> {
    let want_dims = u8::try_from(max_dims.len()).unwrap_or(u8::MAX);
    let Some(&[m0, m1, dtype, ndims]) = bytes.first_chunk::<4>() else {
        return Err(Error::TruncatedHeader {
            path: path.to_path_buf(),
            expected: 4,
            found: bytes.len(),
        });
    };
    if [m0, m1] != [0, 0] {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            found: [m0, m1],
        });
    }
    if dtype != DTYPE_U8 {
        return Err(Error::UnsupportedDtype {
            path: path.to_path_buf(),
            dtype,
        });
    }
    if ndims != want_dims {
        return Err(Error::WrongDimCount {
            path: path.to_path_buf(),
            expected: want_dims,
            found: ndims,
        });
    }
    let header_len = 4 + 4 * usize::from(ndims);
    let Some((header, data)) = bytes.split_at_checked(header_len) else {
        return Err(Error::TruncatedHeader {
            path: path.to_path_buf(),
            expected: header_len,
            found: bytes.len(),
        });
    };
    let dims: Vec<u32> = header[4..]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(axis) = dims.iter().position(|&d| d == 0) {
        return Err(Error::ZeroDim {
            path: path.to_path_buf(),
            axis,
        });
    }
    for (axis, (&value, &max)) in dims.iter().zip(max_dims).enumerate() {
        if value > max {
            return Err(Error::DimTooLarge {
                path: path.to_path_buf(),
                axis,
                value,
                max,
            });
        }
    }
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
        .ok_or_else(|| Error::SizeOverflow {
            path: path.to_path_buf(),
            dims: dims.clone(),
        })?;
    let found = data.len();
    if found < expected {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    if found > expected {
        return Err(Error::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    Ok((dims, data))
}

/// Reads a file of at most `cap` bytes and, if it is gzip (by `.gz` suffix or magic),
/// decompresses it to at most `cap` bytes.
pub(crate) fn read_file_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let raw = read_capped(file, path, cap, io_err)?;
    let gz_suffix = path.extension().is_some_and(|e| e == "gz");
    Ok(maybe_gunzip(&raw, path, gz_suffix, cap)?.into_owned())
}

/// Reads a file of at most `cap` bytes as it is (no decompression).
pub(crate) fn read_file_capped_raw(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    read_capped(file, path, cap, io_err)
}

/// Decompresses `bytes` if they are gzip (magic `1f 8b`, or `force`), else borrows them.
/// The decompressed size is capped at `cap` bytes.
pub(crate) fn maybe_gunzip<'a>(
    bytes: &'a [u8],
    path: &Path,
    force: bool,
    cap: u64,
) -> Result<std::borrow::Cow<'a, [u8]>> {
    if !force && !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let decoder = flate2::read::MultiGzDecoder::new(bytes);
    let out = read_capped(decoder, path, cap, |source| Error::Decompress {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(std::borrow::Cow::Owned(out))
}

/// Reads all of `reader`, failing with [`Error::TooLarge`] past `cap` bytes.
fn read_capped(
    reader: impl Read,
    path: &Path,
    cap: u64,
    on_err: impl FnOnce(std::io::Error) -> Error,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(on_err)?;
    if out.len() as u64 > cap {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: cap,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).expect("write to Vec");
        enc.finish().expect("finish gzip")
    }

    fn two_images() -> Vec<u8> {
        // two 2x3 images
        (0u8..12).collect()
    }

    #[test]
    fn images_roundtrip_plain() {
        let px = two_images();
        let file = encode_idx_images(2, 3, &px);
        assert_eq!(&file[..4], &[0, 0, 8, 3]);
        assert_eq!(file.len(), 4 + 12 + 12);
        let (n, r, c, got) = parse_idx_images(&file).expect("parse");
        assert_eq!((n, r, c), (2, 2, 3));
        assert_eq!(got, px);
    }

    #[test]
    fn images_and_labels_roundtrip_gzip_bytes() {
        let px = two_images();
        let (n, r, c, got) = parse_idx_images(&gzip(&encode_idx_images(2, 3, &px))).expect("gz");
        assert_eq!((n, r, c, got), (2, 2, 3, px));
        let labels = parse_idx_labels(&gzip(&encode_idx_labels(&[9, 0, 3]))).expect("gz");
        assert_eq!(labels, vec![9, 0, 3]);
    }

    #[test]
    fn labels_roundtrip() {
        let file = encode_idx_labels(&[7, 2, 1]);
        assert_eq!(&file[..8], &[0, 0, 8, 1, 0, 0, 0, 3]);
        assert_eq!(parse_idx_labels(&file).expect("parse"), vec![7, 2, 1]);
    }

    #[test]
    fn parse_does_not_check_label_range() {
        assert_eq!(
            parse_idx_labels(&encode_idx_labels(&[200])).expect("raw"),
            vec![200]
        );
    }

    #[test]
    fn bad_magic() {
        let mut file = encode_idx_labels(&[1]);
        file[1] = 0x01;
        let err = parse_idx_labels(&file).expect_err("bad magic");
        assert!(
            matches!(
                err,
                Error::BadMagic {
                    found: [0x00, 0x01],
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("<memory>"), "{err}");
    }

    #[test]
    fn wrong_dtype_names_the_byte() {
        let mut file = encode_idx_images(1, 1, &[5]);
        file[2] = 0x0d; // f32
        let err = parse_idx_images(&file).expect_err("dtype");
        assert!(
            matches!(err, Error::UnsupportedDtype { dtype: 0x0d, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("0x0d"), "{err}");
    }

    #[test]
    fn wrong_dim_count() {
        // a labels file given as images, and vice versa
        let err = parse_idx_images(&encode_idx_labels(&[1, 2])).expect_err("1-D as images");
        assert!(
            matches!(
                err,
                Error::WrongDimCount {
                    expected: 3,
                    found: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = parse_idx_labels(&encode_idx_images(1, 1, &[1])).expect_err("3-D as labels");
        assert!(
            matches!(
                err,
                Error::WrongDimCount {
                    expected: 1,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn zero_dims() {
        let err = parse_idx_images(&encode_idx_u8(&[1, 0, 3], &[])).expect_err("zero rows");
        assert!(matches!(err, Error::ZeroDim { axis: 1, .. }), "{err:?}");
        let err = parse_idx_labels(&encode_idx_labels(&[])).expect_err("zero labels");
        assert!(matches!(err, Error::ZeroDim { axis: 0, .. }), "{err:?}");
        // the encoder's documented behaviour for inconsistent input
        let err = parse_idx_images(&encode_idx_images(0, 3, &[1, 2])).expect_err("zero");
        assert!(matches!(err, Error::ZeroDim { axis: 0, .. }), "{err:?}");
    }

    #[test]
    fn side_too_large() {
        let err = parse_idx_images(&encode_idx_u8(&[1, 4097, 1], &[])).expect_err("big side");
        assert!(
            matches!(
                err,
                Error::DimTooLarge {
                    axis: 1,
                    value: 4097,
                    max: 4096,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn size_overflow() {
        let max = u32::MAX as usize;
        let file = encode_idx_u8(&[max, max, max], &[]);
        // parse_idx_images would stop at the side limit first, so go one level down
        let err = parse_idx_u8(&file, Path::new("x"), &[u32::MAX; 3]).expect_err("overflow");
        assert!(
            matches!(&err, Error::SizeOverflow { dims, .. } if *dims == [u32::MAX; 3]),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_header() {
        for len in 0..4 {
            let err = parse_idx_labels(&[0, 0, 8][..len.min(3)]).expect_err("short");
            assert!(
                matches!(err, Error::TruncatedHeader { expected: 4, .. }),
                "{err:?}"
            );
        }
        let file = encode_idx_images(2, 3, &two_images());
        let err = parse_idx_images(&file[..10]).expect_err("short dims");
        assert!(
            matches!(
                err,
                Error::TruncatedHeader {
                    expected: 16,
                    found: 10,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_data() {
        let file = encode_idx_images(2, 3, &two_images());
        let err = parse_idx_images(&file[..file.len() - 1]).expect_err("short data");
        assert!(
            matches!(
                err,
                Error::Truncated {
                    expected: 12,
                    found: 11,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn trailing_bytes() {
        let mut file = encode_idx_labels(&[1, 2]);
        file.push(3);
        let err = parse_idx_labels(&file).expect_err("long data");
        assert!(
            matches!(
                err,
                Error::TrailingBytes {
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("1 trailing bytes"), "{err}");
        // encoder with a pixel count that is not a multiple of rows*cols
        let err = parse_idx_images(&encode_idx_images(2, 2, &[0; 5])).expect_err("ragged");
        assert!(matches!(err, Error::TrailingBytes { .. }), "{err:?}");
    }

    #[test]
    fn gzip_bomb_is_capped() {
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 8 * 1024);
        let err = maybe_gunzip(&bomb, Path::new("bomb.gz"), false, 64 * 1024).expect_err("cap");
        assert!(matches!(err, Error::TooLarge { limit: 65536, .. }), "{err:?}");
        // exactly at the cap is fine
        let ok = maybe_gunzip(&bomb, Path::new("bomb.gz"), false, 1 << 20).expect("at cap");
        assert_eq!(ok.len(), 1 << 20);
    }

    #[test]
    fn file_cap_applies_to_plain_files_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        std::fs::write(&path, vec![0u8; 100]).expect("write");
        let err = read_file_capped(&path, 99).expect_err("too big");
        assert!(matches!(err, Error::TooLarge { limit: 99, .. }), "{err:?}");
        assert_eq!(read_file_capped(&path, 100).expect("fits").len(), 100);
    }

    #[test]
    fn corrupt_gzip_is_a_typed_error() {
        let mut bomb = gzip(&encode_idx_labels(&[1, 2, 3]));
        let mid = bomb.len() / 2;
        bomb.truncate(mid);
        let err = parse_idx_labels(&bomb).expect_err("corrupt");
        assert!(matches!(err, Error::Decompress { .. }), "{err:?}");
    }

    #[test]
    fn gz_suffix_forces_decompression() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.gz");
        std::fs::write(&path, encode_idx_labels(&[1])).expect("write");
        let err = read_file_capped(&path, MAX_FILE_BYTES).expect_err("not gzip");
        assert!(matches!(err, Error::Decompress { .. }), "{err:?}");
    }
}
