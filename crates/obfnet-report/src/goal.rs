//! The privacy goal of the project, stated once: with K ≥ 10 nets, a mean accuracy drop of at
//! most 1 point and a best-attack SSIM of at most 0.3 (digits generally unrecognisable). The
//! best attack is [`obfnet_privacy::SchemeResult::best_attack`] — the same rule everywhere
//! (report, comparison): reference rows (observed as image, label-only) are not attacks.

/// Accuracy drop at or below which (points) a configuration can meet the goal.
pub const GOAL_DROP_PT: f64 = 1.0;
/// Best-attack SSIM at or below which a configuration can meet the goal.
pub const GOAL_SSIM: f64 = 0.3;
/// Nets needed for the goal to apply.
pub const GOAL_K: usize = 10;

/// Whether K nets with this accuracy drop (points) and best-attack SSIM meet the goal, and if
/// not, why.
pub fn goal_verdict(k: usize, drop: f64, ssim: f64) -> String {
    if k < GOAL_K {
        return format!("n/a (K = {k} < {GOAL_K})");
    }
    let mut why = Vec::new();
    if drop.is_nan() || drop > GOAL_DROP_PT {
        why.push(format!("drop {drop:.2} pt > {GOAL_DROP_PT}"));
    }
    if ssim.is_nan() || ssim > GOAL_SSIM {
        why.push(format!("SSIM {ssim:.3} > {GOAL_SSIM}"));
    }
    if why.is_empty() {
        "met".into()
    } else {
        format!("not met: {}", why.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_needs_ten_nets_small_drop_and_low_ssim() {
        assert_eq!(goal_verdict(10, 0.9, 0.29), "met");
        assert_eq!(goal_verdict(10, 1.0, 0.3), "met");
        assert!(goal_verdict(2, 0.1, 0.1).starts_with("n/a"));
        assert_eq!(goal_verdict(10, 1.2, 0.2), "not met: drop 1.20 pt > 1");
        assert_eq!(goal_verdict(10, 0.5, 0.31), "not met: SSIM 0.310 > 0.3");
        assert!(goal_verdict(10, 0.5, f64::NAN).starts_with("not met"));
    }
}
