//! ROC AUC by ranking (the Mann–Whitney U statistic), with ties counted as one half.

use crate::{Error, Result};

/// Area under the ROC curve of `scores` for binary `labels` (true = positive).
///
/// Computed as the probability that a random positive scores higher than a random negative,
/// ties counting one half: ranks are assigned after sorting, tied scores share their mean rank,
/// and `AUC = (R₊ − n₊(n₊+1)/2) / (n₊·n₋)` where `R₊` is the rank sum of the positives.
/// 0.5 is chance; 1 separates the classes perfectly.
///
/// # Errors
/// Lengths differ; a score is not finite; one class is absent.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    if scores.len() != labels.len() {
        return Err(Error::Mismatch {
            what: "AUC labels for scores",
            expected: scores.len(),
            got: labels.len(),
        });
    }
    if scores.iter().any(|s| !s.is_finite()) {
        return Err(Error::NonFinite("scores"));
    }
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(Error::OneClass {
            positives: pos,
            negatives: neg,
        });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // positions i..=j share the mean of ranks i+1..=j+1
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += order[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * mean_rank;
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Ok((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * n))
}
