//! Times the pieces of one K-net training step (developer tool, not part of the API).
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

fn main() {
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
    time("10 x 2D x^T dy [784,64]x[64,1000] (A transposed view)", 10, || {
        for _ in 0..k {
            let _ = x2.clone().transpose().matmul(dy2.clone()).into_data();
        }
    });
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
    let stack = obfnet_nn::ObfStack::new(obfnet_nn::ObfArch::ObfNet2, &(0..k as u64).collect::<Vec<_>>(), 28, 28, &ad).unwrap();
    let xs = Tensor::<3>::random([k, b, 784], Distribution::Default, &ad);
    time("stack fwd+bwd (no LeNet) K=10", 10, || {
        let y = stack.forward(xs.clone()).sum();
        let _g = y.backward();
    });
}
