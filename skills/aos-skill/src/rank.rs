//! Ranking skills against a query by name and description, the default
//! `skill.discovery.resolve` algorithm. Pure, so it is tested natively.

use aos_sdk::{Value, json};

/// Lowercase words of `text` (letters and digits).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A word's stem, by a light English suffix rule (`notes` → `note`,
/// `searching` → `search`, `libraries` → `library`): enough for a query to
/// meet a description in another form of the same word.
fn stem(word: &str) -> String {
    let w = word.to_lowercase();
    let cut = |suffix: &str, add: &str| -> Option<String> {
        let base = w.strip_suffix(suffix)?;
        (base.chars().count() >= 3).then(|| format!("{base}{add}"))
    };
    cut("ies", "y")
        .or_else(|| cut("ing", ""))
        .or_else(|| cut("ed", ""))
        .or_else(|| cut("es", "").filter(|b| b.ends_with(['s', 'x', 'z', 'h'])))
        .or_else(|| cut("s", "").filter(|_| !w.ends_with("ss")))
        .unwrap_or(w)
}

/// How well one skill matches the query's words; 0 is no match.
///
/// The whole query as the name scores highest, then the name containing it;
/// each query word then counts for more in the name (its words, then as a
/// substring) than in the description (a whole word, then the same stem,
/// then a prefix).
pub fn score(query: &str, name: &str, description: &str) -> u32 {
    let q = query.trim().to_lowercase();
    let name = name.to_lowercase();
    let mut s = 0;
    if name == q {
        s += 100;
    } else if !q.is_empty() && name.contains(&q) {
        s += 40;
    }
    let name_words = words(&name);
    let desc_words = words(description);
    for w in words(&q) {
        let st = stem(&w);
        if name_words.contains(&w) {
            s += 20;
        } else if name.contains(&w) || name_words.iter().any(|n| stem(n) == st) {
            s += 10;
        }
        if desc_words.contains(&w) {
            s += 4;
        } else if desc_words.iter().any(|d| stem(d) == st) {
            s += 3;
        } else if desc_words.iter().any(|d| d.starts_with(&w)) {
            s += 2;
        }
    }
    s
}

/// The candidates matching `query`, best first (ties by name), each with its
/// `score`, at most `limit`. Without a query every candidate is kept in
/// order: discovery without a query lists.
pub fn rank(query: Option<&str>, candidates: &[Value], limit: usize) -> Vec<Value> {
    let Some(q) = query.filter(|q| !q.trim().is_empty()) else {
        return candidates.iter().take(limit).cloned().collect();
    };
    let text = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    let mut scored: Vec<(u32, String, Value)> = candidates
        .iter()
        .map(|c| {
            let s = score(q, &text(c, "name"), &text(c, "description"));
            (s, text(c, "name"), c.clone())
        })
        .filter(|(s, ..)| *s > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(limit)
        .map(|(s, _, mut c)| {
            c["score"] = json!(s);
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skills() -> Vec<Value> {
        vec![
            json!({"name": "pdf", "description": "Read and fill PDF forms"}),
            json!({"name": "pdf-tables", "description": "Extract tables from PDF files"}),
            json!({"name": "git-helper", "description": "Commit, branch and review with git"}),
            json!({"name": "csv", "description": "Tables in CSV: sort, filter, join"}),
        ]
    }

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().filter_map(|c| c["name"].as_str()).collect()
    }

    #[test]
    fn the_exact_name_comes_first_then_names_then_descriptions() {
        assert_eq!(
            names(&rank(Some("pdf"), &skills(), 10)),
            ["pdf", "pdf-tables"]
        );
        assert_eq!(
            names(&rank(Some("tables"), &skills(), 10)),
            ["pdf-tables", "csv"]
        );
        assert_eq!(names(&rank(Some("GIT"), &skills(), 10)), ["git-helper"]);
    }

    #[test]
    fn several_words_add_up_and_prefixes_count_a_little() {
        let r = rank(Some("pdf tables"), &skills(), 10);
        assert_eq!(names(&r), ["pdf-tables", "pdf", "csv"]);
        assert!(r[0]["score"].as_u64() > r[1]["score"].as_u64());
        assert_eq!(names(&rank(Some("filt"), &skills(), 10)), ["csv"]);
    }

    #[test]
    fn another_form_of_a_word_matches_its_stem() {
        let pad = vec![json!({"name": "jot", "description": "A note pad"})];
        assert_eq!(names(&rank(Some("notes"), &pad, 10)), ["jot"]);
        assert_eq!(names(&rank(Some("noting"), &pad, 10)), Vec::<&str>::new());
        let lib = vec![json!({"name": "libs", "description": "Searches the libraries"})];
        assert_eq!(names(&rank(Some("library search"), &lib, 10)), ["libs"]);
        assert_eq!(names(&rank(Some("lib"), &lib, 10)), ["libs"]);
        for (w, s) in [
            ("notes", "note"),
            ("boxes", "box"),
            ("class", "class"),
            ("searched", "search"),
            ("pdf", "pdf"),
        ] {
            assert_eq!(stem(w), s, "{w}");
        }
        // A whole word still beats another form of it.
        let both = vec![
            json!({"name": "a", "description": "notes"}),
            json!({"name": "b", "description": "note"}),
        ];
        assert_eq!(names(&rank(Some("notes"), &both, 10)), ["a", "b"]);
    }

    #[test]
    fn no_match_is_left_out_and_the_limit_holds() {
        assert!(rank(Some("kubernetes"), &skills(), 10).is_empty());
        assert_eq!(rank(Some("pdf"), &skills(), 1).len(), 1);
    }

    #[test]
    fn without_a_query_every_candidate_is_kept_in_order() {
        assert_eq!(names(&rank(None, &skills(), 10)).len(), 4);
        assert_eq!(
            names(&rank(Some("  "), &skills(), 2)),
            ["pdf", "pdf-tables"]
        );
    }
}
