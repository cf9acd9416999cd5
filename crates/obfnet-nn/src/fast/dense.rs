//! Dense + activation stacks (ObfNet1, ObfNet2, the bottleneck net) with closed-form forward and
//! backward passes, and a fused in-place Adam over all of a net's parameters at once.

use obfnet_core::{Activation, LayerSpec, LayerWeights};

use super::gemm::{Op, gemm};
use crate::data::NORMALISATION;
use crate::{Error, Result};

/// The activation after a dense layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// `max(z, 0)`.
    Relu,
    /// None (the bottleneck's linear code layer).
    Linear,
    /// Clamp to `[lo, hi]` (the raw image range in normalised units).
    Clip(f32, f32),
}

impl Act {
    #[inline(always)]
    fn apply(self, z: f32) -> f32 {
        match self {
            Act::Relu => z.max(0.0),
            Act::Linear => z,
            Act::Clip(lo, hi) => z.clamp(lo, hi),
        }
    }

    /// Whether the gradient passes at pre-activation `z` (burn's rules: ReLU passes where
    /// `z > 0`, clamp where `lo ≤ z ≤ hi`).
    #[inline(always)]
    fn passes(self, z: f32) -> bool {
        match self {
            Act::Relu => z > 0.0,
            Act::Linear => true,
            Act::Clip(lo, hi) => z >= lo && z <= hi,
        }
    }
}

#[derive(Clone, Debug)]
struct Layer {
    inputs: usize,
    outputs: usize,
    act: Act,
    /// Offset of the weight `[outputs, inputs]` (row-major) in the parameter vector; the bias
    /// `[outputs]` follows it.
    offset: usize,
}

/// Adam's hyper-parameters, as burn's `AdamConfig` the burn path uses (β₁ 0.9, β₂ 0.999,
/// ε 1e-8, no weight decay, no AMSGrad).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamParams {
    /// β₁.
    pub beta_1: f32,
    /// β₂.
    pub beta_2: f32,
    /// ε.
    pub epsilon: f32,
}

impl Default for AdamParams {
    fn default() -> Self {
        AdamParams {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Adam's state for one parameter vector: the two moments and the step count.
#[derive(Clone, Debug)]
pub struct Adam {
    hp: AdamParams,
    m: Vec<f32>,
    v: Vec<f32>,
    time: i32,
}

impl Adam {
    /// Fresh state for `n` parameters.
    pub fn new(n: usize, hp: AdamParams) -> Adam {
        Adam {
            hp,
            m: vec![0.0; n],
            v: vec![0.0; n],
            time: 0,
        }
    }

    /// One Adam step in place: `params -= lr · m̂ / (√v̂ + ε)`, in one pass over the four
    /// vectors, with the same operations (and order of rounding) as burn 0.22's `Adam`:
    /// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, update `m·c / (√v + ε·√(1−β₂ᵗ))` with
    /// `c = √(1−β₂ᵗ) / (1−β₁ᵗ)`.
    ///
    /// # Panics
    /// If `params` or `grads` is not as long as the state (a bug in the caller).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f64) {
        pulp::Arch::new().dispatch(AdamRun {
            adam: self,
            params,
            grads,
            lr,
        });
    }

    #[inline(always)]
    fn step_impl(&mut self, params: &mut [f32], grads: &[f32], lr: f64) {
        assert!(params.len() == self.m.len() && grads.len() == self.m.len());
        self.time += 1;
        let AdamParams {
            beta_1,
            beta_2,
            epsilon,
        } = self.hp;
        let bc2 = (1.0 - beta_2.powi(self.time)).sqrt();
        let c = bc2 / (1.0 - beta_1.powi(self.time));
        let eps = epsilon * bc2;
        let (f1, f2) = (1.0 - beta_1, 1.0 - beta_2);
        let lr = lr as f32;
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            let mi = *m * beta_1 + g * f1;
            let vi = *v * beta_2 + (g * g) * f2;
            *m = mi;
            *v = vi;
            *p -= (mi * c) / (vi.sqrt() + eps) * lr;
        }
    }
}

/// One dense net: parameters, gradients, Adam state and the activations of the last forward
/// pass, all allocated once (the activation buffers grow to the largest batch seen).
#[derive(Clone, Debug)]
pub struct DenseNet {
    layers: Vec<Layer>,
    params: Vec<f32>,
    grads: Vec<f32>,
    adam: Adam,
    /// Per layer: pre-activation `z` and activation `a`, `[batch, outputs]`.
    z: Vec<Vec<f32>>,
    a: Vec<Vec<f32>>,
    /// Gradient scratch: `dz` of the current layer and `da` of the layer below.
    dz: Vec<f32>,
    da: Vec<f32>,
    batch: usize,
}

impl DenseNet {
    /// A net from layer specs and weights in the bundle's layout (dense weight `[out, in]`).
    ///
    /// # Errors
    /// [`Error::Config`] for a layer that is not dense (the convolutional variant stays on
    /// burn), [`Error::Shape`] when the weights do not fit the specs.
    pub fn from_layers(specs: &[LayerSpec], weights: &[LayerWeights], adam: AdamParams) -> Result<DenseNet> {
        if specs.is_empty() || specs.len() != weights.len() {
            return Err(Error::Shape(format!(
                "{} layer specs for {} weight sets",
                specs.len(),
                weights.len()
            )));
        }
        let mut layers = Vec::with_capacity(specs.len());
        let mut params = Vec::new();
        for (spec, w) in specs.iter().zip(weights) {
            let LayerSpec::Dense { inputs, outputs, act } = *spec else {
                return Err(Error::Config {
                    field: "arch",
                    reason: "the fast training path takes dense layers only (the convolutional \
                             obfuscator trains on burn)"
                        .into(),
                });
            };
            if let Some(prev) = layers.last().map(|l: &Layer| l.outputs)
                && prev != inputs
            {
                return Err(Error::Shape(format!(
                    "layer of {inputs} inputs after {prev} outputs"
                )));
            }
            if w.weight.len() != inputs * outputs || w.bias.len() != outputs {
                return Err(Error::Shape(format!(
                    "dense {inputs}→{outputs} got {} weights and {} biases",
                    w.weight.len(),
                    w.bias.len()
                )));
            }
            let act = match act {
                Activation::Relu => Act::Relu,
                Activation::None => Act::Linear,
                Activation::Clip => Act::Clip(NORMALISATION.apply(0), NORMALISATION.apply(255)),
            };
            layers.push(Layer {
                inputs,
                outputs,
                act,
                offset: params.len(),
            });
            params.extend_from_slice(&w.weight);
            params.extend_from_slice(&w.bias);
        }
        let n = params.len();
        Ok(DenseNet {
            z: vec![Vec::new(); layers.len()],
            a: vec![Vec::new(); layers.len()],
            layers,
            grads: vec![0.0; n],
            adam: Adam::new(n, adam),
            params,
            dz: Vec::new(),
            da: Vec::new(),
            batch: 0,
        })
    }

    /// Width of the input.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }

    /// Width of the output.
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// All parameters, layer by layer (weight `[out, in]`, then bias).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The gradients of the last [`DenseNet::backward`], in the layout of [`DenseNet::params`].
    pub fn grads(&self) -> &[f32] {
        &self.grads
    }

    /// The parameters per layer, in the bundle's layout.
    pub fn layer_weights(&self) -> Vec<LayerWeights> {
        self.layers
            .iter()
            .map(|l| {
                let w = l.inputs * l.outputs;
                LayerWeights {
                    weight: self.params[l.offset..l.offset + w].to_vec(),
                    bias: self.params[l.offset + w..l.offset + w + l.outputs].to_vec(),
                }
            })
            .collect()
    }

    fn ensure_batch(&mut self, b: usize) {
        if b <= self.batch {
            return;
        }
        for (l, (z, a)) in self.layers.iter().zip(self.z.iter_mut().zip(self.a.iter_mut())) {
            z.resize(b * l.outputs, 0.0);
            a.resize(b * l.outputs, 0.0);
        }
        let widest = self
            .layers
            .iter()
            .map(|l| l.outputs.max(l.inputs))
            .max()
            .unwrap_or(0);
        self.dz.resize(b * widest, 0.0);
        self.da.resize(b * widest, 0.0);
        self.batch = b;
    }

    /// Runs the net on `b` samples `x` (`[b, inputs]`, row-major) and returns its output
    /// `[b, outputs]`; keeps what [`DenseNet::backward`] needs.
    ///
    /// # Panics
    /// If `x` holds fewer than `b · inputs` values.
    pub fn forward(&mut self, x: &[f32], b: usize) -> &[f32] {
        self.ensure_batch(b);
        pulp::Arch::new().dispatch(Forward { net: self, x, b });
        let last = self.layers.len() - 1;
        &self.a[last][..b * self.outputs()]
    }

    #[inline(always)]
    fn forward_impl(&mut self, x: &[f32], b: usize) {
        for i in 0..self.layers.len() {
            let Layer {
                inputs,
                outputs,
                act,
                offset,
            } = self.layers[i];
            let (below, rest) = self.a.split_at_mut(i);
            let h: &[f32] = if i == 0 { x } else { &below[i - 1] };
            let z = &mut self.z[i][..b * outputs];
            let w = &self.params[offset..offset + inputs * outputs];
            let bias = &self.params[offset + inputs * outputs..offset + inputs * outputs + outputs];
            // z = h · Wᵀ, with W stored [out, in]
            gemm(z, Op::n(h, b, inputs), Op::t(w, outputs, inputs), false);
            let a = &mut rest[0][..b * outputs];
            for (zr, ar) in z.chunks_exact_mut(outputs).zip(a.chunks_exact_mut(outputs)) {
                for ((zv, av), &bv) in zr.iter_mut().zip(ar.iter_mut()).zip(bias) {
                    *zv += bv;
                    *av = act.apply(*zv);
                }
            }
        }
    }

    /// Gradients of every parameter (into [`DenseNet::grads`], replacing the old ones) given the
    /// gradient `dy` (`[b, outputs]`) of the loss with respect to the output of the last
    /// [`DenseNet::forward`] on the same `x`. No input gradient is computed.
    ///
    /// # Panics
    /// If `x` or `dy` is shorter than the last forward pass's batch needs.
    pub fn backward(&mut self, x: &[f32], dy: &[f32], b: usize) {
        pulp::Arch::new().dispatch(Backward { net: self, x, dy, b });
    }

    #[inline(always)]
    fn backward_impl(&mut self, x: &[f32], dy: &[f32], b: usize) {
        let nl = self.layers.len();
        {
            let l = &self.layers[nl - 1];
            let n = b * l.outputs;
            for ((d, &g), &z) in self.dz[..n].iter_mut().zip(&dy[..n]).zip(&self.z[nl - 1][..n]) {
                *d = if l.act.passes(z) { g } else { 0.0 };
            }
        }
        for i in (0..nl).rev() {
            let Layer {
                inputs,
                outputs,
                offset,
                ..
            } = self.layers[i];
            let h: &[f32] = if i == 0 { x } else { &self.a[i - 1] };
            let dz = &self.dz[..b * outputs];
            let (gw, gb) =
                self.grads[offset..offset + inputs * outputs + outputs].split_at_mut(inputs * outputs);
            // dW = dzᵀ · h  ([out, in])
            gemm(gw, Op::t(dz, b, outputs), Op::n(h, b, inputs), false);
            gb.fill(0.0);
            for row in dz.chunks_exact(outputs) {
                for (g, &d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
            if i > 0 {
                // da = dz · W, then through the activation of the layer below
                let w = &self.params[offset..offset + inputs * outputs];
                let da = &mut self.da[..b * inputs];
                gemm(da, Op::n(dz, b, outputs), Op::n(w, outputs, inputs), false);
                let act = self.layers[i - 1].act;
                for ((d, &g), &z) in self.dz[..b * inputs]
                    .iter_mut()
                    .zip(&*da)
                    .zip(&self.z[i - 1][..b * inputs])
                {
                    *d = if act.passes(z) { g } else { 0.0 };
                }
            }
        }
    }

    /// One fused Adam step of every parameter with the gradients of the last backward pass.
    pub fn adam_step(&mut self, lr: f64) {
        self.adam.step(&mut self.params, &self.grads, lr);
    }
}

// Run-time dispatch. `pulp` compiles `with_simd` inside a function with the CPU's vector
// extensions enabled (AVX2 + FMA, or AVX-512); the work must be *inlined* into it to be compiled
// with them. A closure does not do that (its `FnOnce::call_once` shim stays an ordinary function,
// measured: SSE code only, 2–3× slower), so each entry point is a struct whose `with_simd` is
// `#[inline(always)]` and calls an `#[inline(always)]` body. No fast-math: the results are the
// same bits as the portable build (rustc does not contract `a * b + c` into an FMA).

struct AdamRun<'a> {
    adam: &'a mut Adam,
    params: &'a mut [f32],
    grads: &'a [f32],
    lr: f64,
}

impl pulp::WithSimd for AdamRun<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.adam.step_impl(self.params, self.grads, self.lr);
    }
}

struct Forward<'a> {
    net: &'a mut DenseNet,
    x: &'a [f32],
    b: usize,
}

impl pulp::WithSimd for Forward<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.net.forward_impl(self.x, self.b);
    }
}

struct Backward<'a> {
    net: &'a mut DenseNet,
    x: &'a [f32],
    dy: &'a [f32],
    b: usize,
}

impl pulp::WithSimd for Backward<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.net.backward_impl(self.x, self.dy, self.b);
    }
}
