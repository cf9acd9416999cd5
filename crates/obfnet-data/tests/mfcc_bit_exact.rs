//! The MFCC front end is one `no_std` implementation (`obfnet-dsp`, libm math) used by the
//! device and by `obfnet-data`. These tests pin it bit for bit to the std-math implementation it
//! replaced (kept below, frozen, as the reference): on every FSDD clip (when the data is
//! present) and on generated signals. Any last-bit difference between libm and the platform's
//! math library on the values that occur would show up here.

use std::path::PathBuf;

/// The std-math MFCC computation as `obfnet-data` had it before the move (frozen reference;
/// only what `compute` needs).
mod std_reference {
    #[derive(Clone)]
    pub struct Cfg {
        pub frame_len: usize,
        pub hop: usize,
        pub n_fft: usize,
        pub n_mels: usize,
        pub n_mfcc: usize,
        pub f_min: f32,
        pub f_max: f32,
        pub log_floor: f32,
        pub frames: usize,
        pub sample_rate: u32,
    }

    fn fft(re: &mut [f32], im: &mut [f32]) {
        let n = re.len();
        let bits = n.trailing_zeros();
        for i in 0..n {
            let j = i.reverse_bits() >> (usize::BITS - bits);
            if j > i {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let ang = -2.0 * std::f64::consts::PI / len as f64;
            for k in 0..len / 2 {
                let (s, c) = (ang * k as f64).sin_cos();
                let (wr, wi) = (c as f32, s as f32);
                for start in (0..n).step_by(len) {
                    let (a, b) = (start + k, start + k + len / 2);
                    let (xr, xi) = (re[b] * wr - im[b] * wi, re[b] * wi + im[b] * wr);
                    re[b] = re[a] - xr;
                    im[b] = im[a] - xi;
                    re[a] += xr;
                    im[a] += xi;
                }
            }
            len <<= 1;
        }
    }

    fn hz_to_mel(f: f32) -> f32 {
        2595.0 * (1.0 + f / 700.0).log10()
    }

    fn mel_to_hz(m: f32) -> f32 {
        700.0 * (10f32.powf(m / 2595.0) - 1.0)
    }

    pub struct Tables {
        pub window: Vec<f32>,
        pub filters: Vec<Vec<f32>>,
        pub dct: Vec<Vec<f32>>,
    }

    pub fn tables(cfg: &Cfg) -> Tables {
        let window = (0..cfg.frame_len)
            .map(|i| {
                let x = 2.0 * std::f64::consts::PI * i as f64 / cfg.frame_len as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        let bins = cfg.n_fft / 2 + 1;
        let (lo, hi) = (hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max));
        let edges: Vec<f32> = (0..cfg.n_mels + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f32 / (cfg.n_mels + 1) as f32))
            .collect();
        let bin_hz = cfg.sample_rate as f32 / cfg.n_fft as f32;
        let filters = (0..cfg.n_mels)
            .map(|m| {
                let (l, c, r) = (edges[m], edges[m + 1], edges[m + 2]);
                (0..bins)
                    .map(|k| {
                        let f = k as f32 * bin_hz;
                        let up = (f - l) / (c - l);
                        let down = (r - f) / (r - c);
                        up.min(down).max(0.0)
                    })
                    .collect()
            })
            .collect();
        let n = cfg.n_mels;
        let dct = (0..n)
            .map(|k| {
                let scale = if k == 0 {
                    (1.0 / n as f64).sqrt()
                } else {
                    (2.0 / n as f64).sqrt()
                };
                (0..n)
                    .map(|i| {
                        let a = std::f64::consts::PI * k as f64 * (2 * i + 1) as f64 / (2 * n) as f64;
                        (scale * a.cos()) as f32
                    })
                    .collect()
            })
            .collect();
        Tables { window, filters, dct }
    }

    pub fn compute(cfg: &Cfg, t: &Tables, audio: &[f32]) -> Vec<f32> {
        let samples = cfg.frame_len + (cfg.frames - 1) * cfg.hop;
        let mut a: Vec<f32> = audio.iter().take(samples).copied().collect();
        a.resize(samples, 0.0);
        let bins = cfg.n_fft / 2 + 1;
        let (nc, nf) = (cfg.n_mfcc, cfg.frames);
        let mut out = vec![0.0f32; nc * nf];
        for f in 0..nf {
            let mut re = vec![0.0f32; cfg.n_fft];
            let mut im = vec![0.0f32; cfg.n_fft];
            for (i, w) in t.window.iter().enumerate() {
                re[i] = a.get(f * cfg.hop + i).copied().unwrap_or(0.0) * w;
            }
            fft(&mut re, &mut im);
            let p: Vec<f32> = (0..bins).map(|k| re[k] * re[k] + im[k] * im[k]).collect();
            let bands: Vec<f32> = t
                .filters
                .iter()
                .map(|fl| fl.iter().zip(&p).map(|(w, e)| w * e).sum())
                .collect();
            let logs: Vec<f32> = bands.iter().map(|&e| e.max(cfg.log_floor).ln()).collect();
            for (k, row) in t.dct.iter().take(nc).enumerate() {
                out[k * nf + f] = row.iter().zip(&logs).map(|(d, l)| d * l).sum();
            }
        }
        out
    }
}

fn reference_cfg(c: &obfnet_data::MfccConfig) -> std_reference::Cfg {
    std_reference::Cfg {
        frame_len: c.frame_len,
        hop: c.hop,
        n_fft: c.n_fft,
        n_mels: c.n_mels,
        n_mfcc: c.n_mfcc,
        f_min: c.f_min,
        f_max: c.f_max,
        log_floor: c.log_floor,
        frames: c.frames,
        sample_rate: c.sample_rate,
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Compares the library (obfnet-data's `Mfcc`, which is obfnet-dsp's) with the reference on
/// `clips`; returns how many clips were checked.
fn check(cfg: &obfnet_data::MfccConfig, clips: &[(String, Vec<f32>)]) -> usize {
    let rcfg = reference_cfg(cfg);
    let tables = std_reference::tables(&rcfg);
    let lib = obfnet_data::Mfcc::new(cfg.clone()).expect("valid config");
    let dsp = obfnet_dsp::Mfcc::new(cfg.clone()).expect("valid config");
    assert_eq!(bits(dsp.window()), bits(&tables.window), "window");
    for (a, b) in dsp.filters().iter().zip(&tables.filters) {
        assert_eq!(bits(a), bits(b), "mel filters");
    }
    for (a, b) in dsp.dct().iter().zip(&tables.dct) {
        assert_eq!(bits(a), bits(b), "DCT");
    }
    for (name, audio) in clips {
        let want = std_reference::compute(&rcfg, &tables, audio);
        assert_eq!(
            bits(&lib.compute(audio)),
            bits(&want),
            "{name}: obfnet-data MFCC differs"
        );
        assert_eq!(
            bits(&dsp.compute(audio)),
            bits(&want),
            "{name}: obfnet-dsp MFCC differs"
        );
    }
    clips.len()
}

fn generated() -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    for f in [60.0f32, 300.0, 440.0, 1000.0, 2500.0, 3900.0] {
        out.push((
            format!("sine {f} Hz"),
            (0..5296)
                .map(|i| 0.5 * (std::f32::consts::TAU * f * i as f32 / 8000.0).sin())
                .collect(),
        ));
    }
    for (len, amp) in [(5296, 1.0f32), (3000, 0.01), (9000, 0.3), (100, 0.9)] {
        out.push((
            format!("noise {len} × {amp}"),
            (0..len).map(|_| amp * noise()).collect(),
        ));
    }
    // quantised 16-bit PCM as WAV files give it, including the extremes, and silence
    out.push((
        "pcm ramp".into(),
        (0..5296)
            .map(|i| f32::from(((i * 97) % 65_536) as u16 as i16) / 32768.0)
            .collect(),
    ));
    out.push(("silence".into(), vec![0.0; 5296]));
    out.push(("empty".into(), vec![]));
    out
}

#[test]
fn dsp_mfcc_is_bit_exact_to_the_std_reference_on_generated_signals() {
    let clips = generated();
    check(&obfnet_data::MfccConfig::FSDD, &clips);
    // other configurations exercise other table values
    for cfg in [
        obfnet_data::MfccConfig {
            n_fft: 512,
            frame_len: 400,
            hop: 160,
            n_mels: 40,
            n_mfcc: 13,
            f_min: 20.0,
            ..obfnet_data::MfccConfig::FSDD
        },
        obfnet_data::MfccConfig {
            sample_rate: 16_000,
            f_max: 8000.0,
            frames: 30,
            ..obfnet_data::MfccConfig::FSDD
        },
    ] {
        check(&cfg, &clips);
    }
}

fn fsdd_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("OBFNET_DATA_DIR").map(|d| PathBuf::from(d).join("fsdd"));
    match dir {
        Some(d) if obfnet_data::fsdd::recordings_dir(&d).is_dir() => Some(d),
        _ => {
            assert!(
                std::env::var("OBFNET_REQUIRE_DATA").as_deref() != Ok("1"),
                "OBFNET_REQUIRE_DATA=1 but FSDD is not under $OBFNET_DATA_DIR/fsdd"
            );
            eprintln!(
                "SKIP mfcc_bit_exact on FSDD: set OBFNET_DATA_DIR to a directory with fsdd/ (obfnet fetch --dataset fsdd)"
            );
            None
        }
    }
}

#[test]
fn dsp_mfcc_is_bit_exact_to_the_std_reference_on_every_fsdd_clip() {
    let Some(dir) = fsdd_dir() else { return };
    let clips: Vec<(String, Vec<f32>)> = obfnet_data::fsdd::list_recordings(&dir)
        .expect("list FSDD")
        .into_iter()
        .map(|c| {
            let wav = obfnet_data::read_wav(&c.path).expect("read WAV");
            (c.id(), wav.to_f32())
        })
        .collect();
    assert!(clips.len() >= 2000, "only {} FSDD clips", clips.len());
    let n = check(&obfnet_data::MfccConfig::FSDD, &clips);
    eprintln!("{n} FSDD clips: bit-exact");
}

/// A `no_std` build takes libm's `logf`, `log10f`, `powf` (see `obfnet_dsp::Math`): how far does that move the
/// FSDD features? Counts differing MFCC values and `u8` codes (quantiser fitted on the train
/// split, as `load_fsdd` does) and bounds them.
#[test]
fn libm_math_changes_few_fsdd_codes() {
    let Some(dir) = fsdd_dir() else { return };
    let cfg = obfnet_data::MfccConfig::FSDD;
    let dsp = obfnet_dsp::Mfcc::new_with::<obfnet_dsp::StdMath>(cfg.clone()).expect("valid");
    let libm = obfnet_dsp::Mfcc::new_with::<obfnet_dsp::LibmMath>(cfg.clone()).expect("valid");
    let clips = obfnet_data::fsdd::list_recordings(&dir).expect("list FSDD");
    let (mut std_maps, mut libm_maps, mut train) = (Vec::new(), Vec::new(), Vec::new());
    // every 3rd clip keeps the test short; the counts scale
    for c in clips.iter().step_by(3) {
        let audio = obfnet_data::read_wav(&c.path).expect("read WAV").to_f32();
        let a = dsp.compute(&audio);
        if !c.is_test() {
            train.extend_from_slice(&a);
        }
        std_maps.extend(a);
        libm_maps.extend(libm.compute(&audio));
    }
    let q = obfnet_data::MfccQuantiser::fit(&train, cfg.n_mfcc, cfg.frames).expect("fit");
    let values = std_maps
        .iter()
        .zip(&libm_maps)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    let max_diff = std_maps
        .iter()
        .zip(&libm_maps)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let (ca, cb) = (q.encode(&std_maps), q.encode(&libm_maps));
    let codes = ca.iter().zip(&cb).filter(|(a, b)| a != b).count();
    let code_step = ca.iter().zip(&cb).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
    eprintln!(
        "libm vs std math on {} FSDD clips (every 3rd): {values} of {} MFCC values differ (max |Δ| {max_diff:e}), \
         {codes} u8 codes differ (by at most {code_step})",
        clips.len().div_ceil(3),
        std_maps.len()
    );
    assert!(code_step <= 1, "a code moved by {code_step}");
    assert!(
        (codes as f64) < 1e-4 * ca.len() as f64,
        "{codes} of {} codes differ",
        ca.len()
    );
}
