//! Reads `ModelProto.opset_import` (field 8) straight from the protobuf wire format, so errors can
//! name the opset a model imports (onnx-ir does not expose it). Only top-level fields are walked;
//! the graph (field 7) is skipped by its length.

/// `(domain, version)` pairs of the model's `opset_import`; empty if the bytes are not a
/// well-formed protobuf message (onnx-ir then reports the real parse error).
pub(crate) fn opset_imports(bytes: &[u8]) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut r = Reader { b: bytes, i: 0 };
    while r.i < r.b.len() {
        let Some(key) = r.varint() else { return out };
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                if r.varint().is_none() {
                    return out;
                }
            }
            1 => r.i += 8,
            5 => r.i += 4,
            2 => {
                let Some(len) = r.varint() else { return out };
                let Some(end) = r.i.checked_add(len as usize).filter(|&e| e <= r.b.len()) else {
                    return out;
                };
                if field == 8 {
                    out.push(parse_opset(&r.b[r.i..end]));
                }
                r.i = end;
            }
            _ => return out,
        }
    }
    out
}

fn parse_opset(b: &[u8]) -> (String, i64) {
    let mut r = Reader { b, i: 0 };
    let (mut domain, mut version) = (String::new(), 0i64);
    while r.i < r.b.len() {
        let Some(key) = r.varint() else { break };
        match (key >> 3, key & 7) {
            (1, 2) => {
                let Some(len) = r.varint() else { break };
                let Some(end) = r.i.checked_add(len as usize).filter(|&e| e <= r.b.len()) else {
                    break;
                };
                domain = String::from_utf8_lossy(&r.b[r.i..end]).into_owned();
                r.i = end;
            }
            (2, 0) => match r.varint() {
                Some(v) => version = v as i64,
                None => break,
            },
            (_, 0) => {
                if r.varint().is_none() {
                    break;
                }
            }
            (_, 2) => {
                let Some(len) = r.varint() else { break };
                r.i = r.i.saturating_add(len as usize);
            }
            _ => break,
        }
    }
    (domain, version)
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}
