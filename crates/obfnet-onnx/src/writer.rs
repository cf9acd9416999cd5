//! A small ONNX *writer*: encodes a graph (float initializers, nodes with int/float/string
//! attributes, one input, one output) as an ONNX `ModelProto` in the protobuf wire format, with
//! no protobuf dependency. obfnet uses it to export its own LeNet-5 to ONNX and to build test
//! graphs in Rust; the files load in onnxruntime and in [`crate::OnnxModel`].

/// A node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// `INT`.
    Int(&'static str, i64),
    /// `INTS`.
    Ints(&'static str, Vec<i64>),
    /// `FLOAT`.
    Float(&'static str, f32),
    /// `STRING`.
    Str(&'static str, String),
}

/// A dimension of the graph's input/output: fixed or symbolic (named).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size such as the batch `"N"`.
    Symbolic(String),
}

#[derive(Clone, Debug)]
struct NodeSpec {
    op: String,
    domain: String,
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attrs: Vec<Attr>,
}

#[derive(Clone, Debug)]
enum InitData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// Builds an ONNX model: `let bytes = GraphWriter::new("x", dims, "y", out_dims).node(…).finish(17)`.
#[derive(Clone, Debug)]
pub struct GraphWriter {
    input: (String, Vec<Dim>),
    output: (String, Vec<Dim>),
    nodes: Vec<NodeSpec>,
    inits: Vec<(String, Vec<usize>, InitData)>,
}

impl GraphWriter {
    /// A graph with one float input and one float output.
    pub fn new(input: &str, input_dims: Vec<Dim>, output: &str, output_dims: Vec<Dim>) -> GraphWriter {
        GraphWriter {
            input: (input.into(), input_dims),
            output: (output.into(), output_dims),
            nodes: Vec::new(),
            inits: Vec::new(),
        }
    }

    /// Adds a float initializer (`data.len()` must equal the product of `dims`).
    pub fn init_f32(&mut self, name: &str, dims: &[usize], data: Vec<f32>) -> &mut Self {
        self.inits.push((name.into(), dims.to_vec(), InitData::F32(data)));
        self
    }

    /// Adds an int64 initializer.
    pub fn init_i64(&mut self, name: &str, dims: &[usize], data: Vec<i64>) -> &mut Self {
        self.inits.push((name.into(), dims.to_vec(), InitData::I64(data)));
        self
    }

    /// Adds a node of the default domain.
    pub fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<Attr>,
    ) -> &mut Self {
        self.node_in_domain("", op, name, inputs, outputs, attrs)
    }

    /// Adds a node of a custom domain.
    pub fn node_in_domain(
        &mut self,
        domain: &str,
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<Attr>,
    ) -> &mut Self {
        self.nodes.push(NodeSpec {
            op: op.into(),
            domain: domain.into(),
            name: name.into(),
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
            outputs: outputs.iter().map(|s| (*s).to_owned()).collect(),
            attrs,
        });
        self
    }

    /// The ONNX file's bytes (IR version 8, default-domain `opset`, plus every custom domain
    /// used at version 1).
    pub fn finish(&self, opset: i64) -> Vec<u8> {
        let mut graph = Vec::new();
        for n in &self.nodes {
            let mut m = Vec::new();
            for i in &n.inputs {
                put_str(&mut m, 1, i);
            }
            for o in &n.outputs {
                put_str(&mut m, 2, o);
            }
            put_str(&mut m, 3, &n.name);
            put_str(&mut m, 4, &n.op);
            for a in &n.attrs {
                put_msg(&mut m, 5, &attr(a));
            }
            if !n.domain.is_empty() {
                put_str(&mut m, 7, &n.domain);
            }
            put_msg(&mut graph, 1, &m);
        }
        put_str(&mut graph, 2, "obfnet");
        for (name, dims, data) in &self.inits {
            let mut t = Vec::new();
            for &d in dims {
                put_varint_field(&mut t, 1, d as u64);
            }
            let (ty, raw): (u64, Vec<u8>) = match data {
                InitData::F32(v) => (1, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                InitData::I64(v) => (7, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            };
            put_varint_field(&mut t, 2, ty);
            put_str(&mut t, 8, name);
            put_bytes(&mut t, 9, &raw);
            put_msg(&mut graph, 5, &t);
        }
        put_msg(&mut graph, 11, &value_info(&self.input.0, &self.input.1));
        put_msg(&mut graph, 12, &value_info(&self.output.0, &self.output.1));

        let mut model = Vec::new();
        put_varint_field(&mut model, 1, 8);
        put_str(&mut model, 2, "obfnet");
        put_msg(&mut model, 7, &graph);
        let mut domains: Vec<&str> = vec![""];
        for n in &self.nodes {
            if !domains.contains(&n.domain.as_str()) {
                domains.push(&n.domain);
            }
        }
        for d in domains {
            let mut o = Vec::new();
            if !d.is_empty() {
                put_str(&mut o, 1, d);
            }
            put_varint_field(&mut o, 2, if d.is_empty() { opset as u64 } else { 1 });
            put_msg(&mut model, 8, &o);
        }
        model
    }
}

fn value_info(name: &str, dims: &[Dim]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dm = Vec::new();
        match d {
            Dim::Fixed(v) => put_varint_field(&mut dm, 1, *v as u64),
            Dim::Symbolic(s) => put_str(&mut dm, 2, s),
        }
        put_msg(&mut shape, 1, &dm);
    }
    let mut tensor = Vec::new();
    put_varint_field(&mut tensor, 1, 1);
    put_msg(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    put_msg(&mut ty, 1, &tensor);
    let mut vi = Vec::new();
    put_str(&mut vi, 1, name);
    put_msg(&mut vi, 2, &ty);
    vi
}

fn attr(a: &Attr) -> Vec<u8> {
    let mut m = Vec::new();
    match a {
        Attr::Int(n, v) => {
            put_str(&mut m, 1, n);
            put_varint_field(&mut m, 3, *v as u64);
            put_varint_field(&mut m, 20, 2);
        }
        Attr::Ints(n, vs) => {
            put_str(&mut m, 1, n);
            for v in vs {
                put_varint_field(&mut m, 8, *v as u64);
            }
            put_varint_field(&mut m, 20, 7);
        }
        Attr::Float(n, v) => {
            put_str(&mut m, 1, n);
            put_key(&mut m, 2, 5);
            m.extend_from_slice(&v.to_le_bytes());
            put_varint_field(&mut m, 20, 1);
        }
        Attr::Str(n, s) => {
            put_str(&mut m, 1, n);
            put_bytes(&mut m, 4, s.as_bytes());
            put_varint_field(&mut m, 20, 3);
        }
    }
    m
}

fn put_varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_key(b: &mut Vec<u8>, field: u64, wire: u64) {
    put_varint(b, (field << 3) | wire);
}

fn put_varint_field(b: &mut Vec<u8>, field: u64, v: u64) {
    put_key(b, field, 0);
    put_varint(b, v);
}

fn put_bytes(b: &mut Vec<u8>, field: u64, v: &[u8]) {
    put_key(b, field, 2);
    put_varint(b, v.len() as u64);
    b.extend_from_slice(v);
}

fn put_str(b: &mut Vec<u8>, field: u64, s: &str) {
    put_bytes(b, field, s.as_bytes());
}

fn put_msg(b: &mut Vec<u8>, field: u64, m: &[u8]) {
    put_bytes(b, field, m);
}
