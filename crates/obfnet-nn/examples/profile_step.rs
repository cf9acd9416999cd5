//! Times the pieces of one K-net training step on this machine (the breakdown quoted in
//! BENCHMARKS.md): `cargo run --release -p obfnet-nn --example profile_step`.
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;

fn time<F: FnMut()>(name: &str, reps: usize, mut f: F) {
    f();
    let mut v = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(f64::total_cmp);
    println!("{name:50} median {:8.2} ms  min {:8.2} ms", v[v.len() / 2], v[0]);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::flex();
    let k = 10;
    let b = 64;
    let x3 = Tensor::<3>::random([k, b, 784], Distribution::Default, &dev);
    let w3 = Tensor::<3>::random([k, 784, 1000], Distribution::Default, &dev);
    time("3D matmul [10,64,784]x[10,784,1000]", 10, || {
        let _ = x3.clone().matmul(w3.clone()).into_data();
    });
    let x2 = Tensor::<2>::random([b, 784], Distribution::Default, &dev);
    let w2 = Tensor::<2>::random([784, 1000], Distribution::Default, &dev);
    time("10 x 2D matmul [64,784]x[784,1000]", 10, || {
        for _ in 0..k {
            let _ = x2.clone().matmul(w2.clone()).into_data();
        }
    });
    let x640 = Tensor::<2>::random([k * b, 784], Distribution::Default, &dev);
    let wk = Tensor::<2>::random([784, 1000 * k], Distribution::Default, &dev);
    time("2D matmul [640,784]x[784,1000]", 10, || {
        let _ = x640.clone().matmul(w2.clone()).into_data();
    });
    time("2D matmul [64,784]x[784,10000]", 10, || {
        let _ = x2.clone().matmul(wk.clone()).into_data();
    });
    // Backward-shaped products: x^T · dy per net.
    let dy3 = Tensor::<3>::random([k, b, 1000], Distribution::Default, &dev);
    time("3D matmul x^T dy [10,784,64]x[10,64,1000]", 10, || {
        let _ = x3.clone().swap_dims(1, 2).matmul(dy3.clone()).into_data();
    });
    let dy2 = Tensor::<2>::random([b, 1000], Distribution::Default, &dev);
    time(
        "10 x 2D x^T dy [784,64]x[64,1000] (A transposed view)",
        10,
        || {
            for _ in 0..k {
                let _ = x2.clone().transpose().matmul(dy2.clone()).into_data();
            }
        },
    );
    let x2t = Tensor::<2>::random([784, b], Distribution::Default, &dev);
    time("10 x 2D [784,64]x[64,1000] contiguous", 10, || {
        for _ in 0..k {
            let _ = x2t.clone().matmul(dy2.clone()).into_data();
        }
    });
    time("3D A·B^T [10,64,1000]x[10,784,1000]^T", 10, || {
        let _ = dy3.clone().matmul(w3.clone().swap_dims(1, 2)).into_data();
    });
    time("3D A·B with B=W^T materialised", 10, || {
        let wt = w3.clone().swap_dims(1, 2) * 1.0;
        let _ = dy3.clone().matmul(wt).into_data();
    });
    time("3D x^T materialised then matmul", 10, || {
        let xt = x3.clone().swap_dims(1, 2) * 1.0;
        let _ = xt.matmul(dy3.clone()).into_data();
    });
    time("3D (dy^T x)^T  [10,1000,64]x[10,64,784]", 10, || {
        let _ = dy3.clone().swap_dims(1, 2).matmul(x3.clone()).into_data();
    });
    let big = Tensor::<3>::random([k, 784, 1000], Distribution::Default, &dev);
    time("elementwise chain x10 on 7.8M (Adam-like)", 5, || {
        let mut t = big.clone();
        for _ in 0..10 {
            t = t * 0.9 + 0.1;
        }
        let _ = t.into_data();
    });
    {
        use burn::tensor::module::{conv2d, max_pool2d};
        use burn::tensor::ops::ConvOptions;
        let x = Tensor::<4>::random([640, 1, 28, 28], Distribution::Default, &dev);
        let w1 = Tensor::<4>::random([6, 1, 5, 5], Distribution::Default, &dev);
        let w2 = Tensor::<4>::random([16, 6, 5, 5], Distribution::Default, &dev);
        let h1 = Tensor::<4>::random([640, 6, 14, 14], Distribution::Default, &dev);
        let c1 = Tensor::<4>::random([640, 6, 28, 28], Distribution::Default, &dev);
        time("conv1 fwd 640", 10, || {
            let _ = conv2d(
                x.clone(),
                w1.clone(),
                None,
                ConvOptions::new([1, 1], [2, 2], [1, 1], 1),
            )
            .into_data();
        });
        time("conv2 fwd 640", 10, || {
            let _ = conv2d(
                h1.clone(),
                w2.clone(),
                None,
                ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
            )
            .into_data();
        });
        time("maxpool1 fwd 640", 10, || {
            let _ = max_pool2d(c1.clone(), burn::tensor::ops::MaxPoolOptions::new([2, 2])).into_data();
        });
        time("maxpool1 via reshape+max_dim 640", 10, || {
            let [n, c, h, w] = c1.dims();
            let _ = c1
                .clone()
                .reshape([n, c, h / 2, 2, w / 2, 2])
                .max_dim(5)
                .max_dim(3)
                .reshape([n, c, h / 2, w / 2])
                .into_data();
        });
        let c1a = c1.clone().autodiff().require_grad();
        time("maxpool1 fwd+bwd burn 640", 10, || {
            let y = max_pool2d(c1a.clone(), burn::tensor::ops::MaxPoolOptions::new([2, 2])).sum();
            let g = y.backward();
            let _ = c1a.grad(&g).map(|t| t.into_data());
        });
        time("maxpool1 fwd+bwd reshape+max_dim 640", 10, || {
            let [n, c, h, w] = c1a.dims();
            let y = c1a
                .clone()
                .reshape([n, c, h / 2, 2, w / 2, 2])
                .max_dim(5)
                .max_dim(3)
                .sum();
            let g = y.backward();
            let _ = c1a.grad(&g).map(|t| t.into_data());
        });
        time("relu on [640,6,28,28]", 10, || {
            let _ = burn::tensor::activation::relu(c1.clone()).into_data();
        });
        // conv1 as unfold + matmul
        time("conv1 as im2col(unfold4d)+matmul 640", 10, || {
            let cols = burn::tensor::module::unfold4d(
                x.clone(),
                [5, 5],
                burn::tensor::ops::UnfoldOptions::new([1, 1], [2, 2], [1, 1]),
            );
            let _ = cols.into_data();
        });
    }
    let ad = dev.clone().autodiff();
    let lenet = obfnet_nn::LeNet::new(&Default::default(), &ad).freeze();
    for n in [64, 640] {
        let x = Tensor::<2>::random([n, 784], Distribution::Default, &ad).require_grad();
        time(&format!("frozen LeNet fwd+bwd(input) batch {n}"), 10, || {
            let y = lenet.forward(x.clone()).sum();
            let g = y.backward();
            let _ = x.grad(&g).map(|t| t.into_data());
        });
        let xi = Tensor::<2>::random([n, 784], Distribution::Default, &dev);
        let lv = lenet.valid();
        time(&format!("LeNet inference batch {n}"), 10, || {
            let _ = lv.forward(xi.clone()).into_data();
        });
    }
    let stack1 = obfnet_nn::ObfStack::new(obfnet_nn::ObfArch::ObfNet2, &[0], 28, 28, &ad)?;
    let xs1 = Tensor::<3>::random([1, b, 784], Distribution::Default, &ad);
    time("stack fwd only K=1", 10, || {
        let _ = stack1.forward(xs1.clone()).into_data();
    });
    time("stack fwd+bwd K=1", 10, || {
        let y = stack1.forward(xs1.clone()).sum();
        let _g = y.backward();
    });
    let stack = obfnet_nn::ObfStack::new(
        obfnet_nn::ObfArch::ObfNet2,
        &(0..k as u64).collect::<Vec<_>>(),
        28,
        28,
        &ad,
    )?;
    let xs = Tensor::<3>::random([k, b, 784], Distribution::Default, &ad);
    let x2a = Tensor::<2>::random([b, 784], Distribution::Default, &ad);
    time("stack forward_all fwd+bwd K=10", 10, || {
        let y = stack.forward_all(x2a.clone()).sum();
        let _g = y.backward();
    });
    time("stack fwd only K=10", 10, || {
        let _ = stack.forward(xs.clone()).into_data();
    });
    time("stack fwd+bwd (no LeNet) K=10", 10, || {
        let y = stack.forward(xs.clone()).sum();
        let _g = y.backward();
    });

    // One full K-step, timed piece by piece.
    {
        use burn::optim::{AdamConfig, GradientsParams};
        let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(&ad);
        let frozen = obfnet_nn::LeNet::new(&Default::default(), &ad).freeze();
        let mut st = obfnet_nn::ObfStack::new(
            obfnet_nn::ObfArch::ObfNet2,
            &(0..k as u64).collect::<Vec<_>>(),
            28,
            28,
            &ad,
        )?;
        let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
        let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(vec![3i64; k * b], [k * b]), &ad);
        let (mut tf, mut tb, mut to) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..12 {
            let t0 = Instant::now();
            let obf = st.forward(xs.clone()).reshape([k * b, 784]);
            let loss = ce.forward(frozen.forward(obf), y.clone());
            let _ = loss.clone().into_data();
            let t1 = Instant::now();
            let mut g = loss.backward();
            let grads = GradientsParams::from_module(&mut g, &st);
            let t2 = Instant::now();
            st = optim.step(1e-3, st, grads);
            let _ = st.net_weights(0);
            let t3 = Instant::now();
            if i >= 2 {
                tf.push((t1 - t0).as_secs_f64() * 1e3);
                tb.push((t2 - t1).as_secs_f64() * 1e3);
                to.push((t3 - t2).as_secs_f64() * 1e3);
            }
        }
        for (name, mut v) in [
            ("fwd (stack+LeNet+loss)", tf),
            ("backward", tb),
            ("adam step (+readback net0)", to),
        ] {
            v.sort_by(f64::total_cmp);
            println!("K-step {name:40} median {:8.2} ms", v[v.len() / 2]);
        }
    }
    Ok(())
}
