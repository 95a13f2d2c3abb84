//! "Did you mean …?": the known name nearest to a mistyped one.

/// The candidate closest to `typed` (case and `-`/`_` ignored), if it is close enough to be
/// a likely typo: at most a third of the typed name's letters differ, or one name begins with
/// the other (`warning` for `warn`).
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.to_lowercase().replace('-', "_");
    let typed_norm = norm(typed);
    let limit = (typed_norm.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|c| {
            let cand = norm(c);
            let shorter = typed_norm.len().min(cand.len());
            let distance = if shorter >= 3
                && (typed_norm.starts_with(&cand) || cand.starts_with(&typed_norm))
            {
                0
            } else {
                strsim::osa_distance(&typed_norm, &cand)
            };
            (distance <= limit).then_some((distance, c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn a_typo_finds_the_name_and_a_different_word_finds_nothing() {
        let presets = ["google", "microsoft", "apple", "github"];
        assert_eq!(nearest("gogle", presets), Some("google"));
        assert_eq!(nearest("Google", presets), Some("google"));
        assert_eq!(nearest("githib", presets), Some("github"));
        assert_eq!(nearest("okta", presets), None);
        assert_eq!(nearest("warning", ["error", "warn", "info"]), Some("warn"));
        assert_eq!(nearest("databse", ["database", "server"]), Some("database"));
    }
}
