//! The privacy goal of the project (issue 14), stated once: with K ≥ 10 nets, a mean accuracy
//! drop of at most 0.5 point and a best-attack SSIM no more than 0.01 above the label-only floor
//! — the server learns the label it answers and essentially nothing else about the image. The
//! best attack is [`obfnet_privacy::SchemeResult::best_attack`] over the whole suite that ran
//! (the strong preset by default) — the same rule everywhere (report, comparison): reference rows
//! (observed as image, label-only) are not attacks. The floor is the label-only reference's SSIM
//! on the same test images.

/// Accuracy drop at or below which (points) a configuration can meet the goal.
pub const GOAL_DROP_PT: f64 = 0.5;
/// Best-attack SSIM gain over the label-only floor at or below which a configuration can meet
/// the goal.
pub const GOAL_GAIN: f64 = 0.01;
/// Nets needed for the goal to apply.
pub const GOAL_K: usize = 10;

/// Whether K nets with this accuracy drop (points), best-attack SSIM and label-only floor SSIM
/// meet the goal, and if not, why.
pub fn goal_verdict(k: usize, drop: f64, ssim: f64, floor: f64) -> String {
    if k < GOAL_K {
        return format!("n/a (K = {k} < {GOAL_K})");
    }
    let mut why = Vec::new();
    if drop.is_nan() || drop > GOAL_DROP_PT + 1e-9 {
        why.push(format!("drop {drop:.2} pt > {GOAL_DROP_PT}"));
    }
    let gain = ssim - floor;
    if gain.is_nan() || gain > GOAL_GAIN + 1e-9 {
        why.push(format!(
            "SSIM {ssim:.3} is {gain:+.3} over the floor {floor:.3} (> {GOAL_GAIN})"
        ));
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
    fn goal_needs_ten_nets_small_drop_and_no_gain_over_the_floor() {
        assert_eq!(goal_verdict(10, 0.4, 0.30, 0.295), "met");
        assert_eq!(goal_verdict(10, 0.5, 0.31, 0.30), "met");
        assert!(goal_verdict(2, 0.1, 0.1, 0.3).starts_with("n/a"));
        assert_eq!(goal_verdict(10, 0.6, 0.2, 0.3), "not met: drop 0.60 pt > 0.5");
        assert_eq!(
            goal_verdict(10, 0.5, 0.32, 0.30),
            "not met: SSIM 0.320 is +0.020 over the floor 0.300 (> 0.01)"
        );
        assert!(goal_verdict(10, 0.5, f64::NAN, 0.3).starts_with("not met"));
        assert!(goal_verdict(10, 0.5, 0.3, f64::NAN).starts_with("not met"));
    }
}
