use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Architecture of the server model, saved as `config.json` next to its weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeNetConfig {
    /// Architecture name; `"lenet5"` is the only one so far.
    pub arch: String,
    /// Input height and width (default 28 × 28; any size from 12 × 12 up to 1024 × 1024 works,
    /// e.g. 20 × 64 MFCC maps).
    pub input: [usize; 2],
    /// Number of classes.
    pub classes: usize,
}

impl LeNetConfig {
    /// The default LeNet-5 for `rows × cols` inputs.
    pub fn for_input(rows: usize, cols: usize) -> LeNetConfig {
        LeNetConfig {
            input: [rows, cols],
            ..LeNetConfig::default()
        }
    }

    /// Checks the architecture name, the input size (each side in 12..=1024, so both
    /// convolution + pooling stages leave at least one position) and the class count (2..=1000).
    ///
    /// # Errors
    /// [`crate::Error::UnsupportedModel`] saying what is unsupported.
    pub fn validate(&self) -> crate::Result<()> {
        let [r, c] = self.input;
        if self.arch != "lenet5"
            || !(12..=1024).contains(&r)
            || !(12..=1024).contains(&c)
            || !(2..=1000).contains(&self.classes)
        {
            return Err(crate::Error::UnsupportedModel {
                arch: format!("{:?}", self.arch),
                rows: r,
                cols: c,
                classes: self.classes,
            });
        }
        Ok(())
    }

    /// Values after the second pooling stage: `16 · ((rows/2 − 4)/2) · ((cols/2 − 4)/2)`.
    fn flat(&self) -> usize {
        let side = |n: usize| (n / 2).saturating_sub(4) / 2;
        16 * side(self.input[0]).max(1) * side(self.input[1]).max(1)
    }
}

impl Default for LeNetConfig {
    fn default() -> Self {
        LeNetConfig {
            arch: "lenet5".into(),
            input: [28, 28],
            classes: 10,
        }
    }
}

/// LeNet-5 as in the ObfNet papers: conv 6@5×5 (pad 2) → ReLU → max-pool 2 → conv 16@5×5 → ReLU
/// → max-pool 2 → fc 120 → ReLU → fc 84 → ReLU → fc 10. About 0.42 M multiply-adds per 28×28
/// image. Other input sizes change only the width of fc 120's input (16 × 5 × 5 for 28 × 28,
/// 16 × 3 × 14 for 20 × 64).
#[derive(Module, Debug)]
pub struct LeNet {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    relu: Relu,
    #[module(skip)]
    rows: usize,
    #[module(skip)]
    cols: usize,
    #[module(skip)]
    flat: usize,
}

impl LeNet {
    /// A freshly initialised LeNet-5 (burn's default initialisers, which match PyTorch's) on
    /// `device`. Seed the device first for a reproducible init. The input size is
    /// `config.input` (check it with [`LeNetConfig::validate`] first; sides below 12 are
    /// treated as 12 for the layer sizes, and such a model rejects every input shape).
    pub fn new(config: &LeNetConfig, device: &Device) -> LeNet {
        let flat = config.flat();
        LeNet {
            conv1: Conv2dConfig::new([1, 6], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device),
            conv2: Conv2dConfig::new([6, 16], [5, 5]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: LinearConfig::new(flat, 120).init(device),
            fc2: LinearConfig::new(120, 84).init(device),
            fc3: LinearConfig::new(84, config.classes).init(device),
            relu: Relu::new(),
            rows: config.input[0],
            cols: config.input[1],
            flat,
        }
    }

    /// `(rows, cols)` of the inputs this model takes.
    pub fn input_shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The architecture of this model.
    pub fn config(&self) -> LeNetConfig {
        LeNetConfig {
            arch: "lenet5".into(),
            input: [self.rows, self.cols],
            classes: self.fc3.weight.val().dims()[1],
        }
    }

    /// Class logits.
    ///
    /// # Shapes
    /// `x`: `[n, rows·cols]` (normalised, flattened; `[n, 784]` for 28×28) → `[n, classes]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [n, _] = x.dims();
        let x = x.reshape([n, 1, self.rows, self.cols]);
        let x = self.pool.forward(self.relu.forward(self.conv1.forward(x)));
        let x = self.pool.forward(self.relu.forward(self.conv2.forward(x)));
        let x = x.reshape([n, self.flat]);
        let x = self.relu.forward(self.fc1.forward(x));
        let x = self.relu.forward(self.fc2.forward(x));
        self.fc3.forward(x)
    }

    /// The parameters read back to the host, split per layer in burn's layouts (conv weights
    /// `[out, in, 5, 5]`, dense weights `[in, out]`): what the hand-written fast path and the
    /// serving edge program copy.
    ///
    /// # Errors
    /// [`crate::Error::TensorRead`] if a tensor cannot be read back, [`crate::Error::Shape`] if
    /// the parameter count does not fit a LeNet-5 of the model's input size.
    pub fn weights(&self) -> crate::Result<LeNetWeights> {
        let (rows, cols, flat) = (self.rows, self.cols, self.flat);
        let classes = self.fc3.weight.val().dims()[1];
        let p = self.parameters_flat()?;
        // `parameters_flat`'s order: the five weights, then the five biases.
        let sizes = [
            6 * 5 * 5,
            16 * 6 * 5 * 5,
            flat * 120,
            120 * 84,
            84 * classes,
            6,
            16,
            120,
            84,
            classes,
        ];
        if p.len() != sizes.iter().sum::<usize>() {
            return Err(crate::Error::Shape(format!(
                "a LeNet-5 for {rows}×{cols} inputs has {} parameters, the model {}",
                sizes.iter().sum::<usize>(),
                p.len()
            )));
        }
        let mut rest = p.as_slice();
        let mut next = |n: usize| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head.to_vec()
        };
        let [c1w, c2w, f1w, f2w, f3w, c1b, c2b, f1b, f2b, f3b] = sizes.map(&mut next);
        Ok(LeNetWeights {
            rows,
            cols,
            classes,
            flat,
            conv1: (c1w, c1b),
            conv2: (c2w, c2b),
            fc1: (f1w, f1b),
            fc2: (f2w, f2b),
            fc3: (f3w, f3b),
        })
    }

    /// Every parameter of the model, flattened in a fixed order (to compare two models bit for bit).
    pub fn parameters_flat(&self) -> crate::Result<Vec<f32>> {
        let read = |t: Tensor<1>| {
            t.into_data()
                .try_into_vec_as::<f32>()
                .map_err(|e| crate::Error::TensorRead {
                    what: "a parameter",
                    reason: format!("{e:?}"),
                })
        };
        let mut out = Vec::new();
        for t in [
            self.conv1.weight.val().flatten::<1>(0, 3),
            self.conv2.weight.val().flatten::<1>(0, 3),
            self.fc1.weight.val().flatten::<1>(0, 1),
            self.fc2.weight.val().flatten::<1>(0, 1),
            self.fc3.weight.val().flatten::<1>(0, 1),
        ] {
            out.extend(read(t)?);
        }
        for b in [
            &self.conv1.bias,
            &self.conv2.bias,
            &self.fc1.bias,
            &self.fc2.bias,
            &self.fc3.bias,
        ]
        .into_iter()
        .flatten()
        {
            out.extend(read(b.val())?);
        }
        Ok(out)
    }

    /// Whether any parameter of the model holds a gradient in `grads` (used to prove the frozen
    /// model gets none).
    pub fn has_any_gradient(&self, grads: &burn::tensor::Gradients) -> bool {
        let convs = [self.conv1.weight.val(), self.conv2.weight.val()];
        let fcs = [
            self.fc1.weight.val(),
            self.fc2.weight.val(),
            self.fc3.weight.val(),
        ];
        let biases = [
            &self.conv1.bias,
            &self.conv2.bias,
            &self.fc1.bias,
            &self.fc2.bias,
            &self.fc3.bias,
        ];
        convs.iter().any(|w| w.grad(grads).is_some())
            || fcs.iter().any(|w| w.grad(grads).is_some())
            || biases
                .iter()
                .copied()
                .flatten()
                .any(|b| b.val().grad(grads).is_some())
    }
}

/// A LeNet-5's parameters on the host ([`LeNet::weights`]): `(weight, bias)` per layer, conv
/// weights `[out, in, 5, 5]`, dense weights `[in, out]` (burn's `Linear` layout).
#[derive(Clone, Debug, PartialEq)]
pub struct LeNetWeights {
    /// Input height.
    pub rows: usize,
    /// Input width.
    pub cols: usize,
    /// Output classes.
    pub classes: usize,
    /// Values entering the first dense layer (after the second pooling stage).
    pub flat: usize,
    /// conv 1 → 6 channels, 5×5, padding 2.
    pub conv1: (Vec<f32>, Vec<f32>),
    /// conv 6 → 16 channels, 5×5, no padding.
    pub conv2: (Vec<f32>, Vec<f32>),
    /// dense `flat` → 120.
    pub fc1: (Vec<f32>, Vec<f32>),
    /// dense 120 → 84.
    pub fc2: (Vec<f32>, Vec<f32>),
    /// dense 84 → classes.
    pub fc3: (Vec<f32>, Vec<f32>),
}
