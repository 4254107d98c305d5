//! `.dockerignore`-style exclusion patterns.
//!
//! Docker's semantics differ from gitignore: patterns are relative to the context root (a leading
//! `/` is dropped), `*` and `?` never cross `/`, `**` spans any number of directories, a pattern
//! that matches a directory excludes everything under it, `!` re-includes, and the last matching
//! pattern wins. Glob matching is globset's; only the Docker-specific cleaning and the
//! "pattern or any parent matches" rule are written here (no maintained crate implements them).

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::PlanError;

/// One pattern as written, with where it came from.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned glob (no leading `!` or `/`).
    pub glob: String,
    /// `!pattern`: re-include.
    pub negated: bool,
}

/// Ordered patterns; the last matching one decides.
#[derive(Debug)]
pub struct Matcher {
    set: GlobSet,
    negated: Vec<bool>,
}

/// Cleans one Docker pattern the way Docker does (`filepath.Clean`, leading `/` dropped).
/// `None` for blank lines and comments.
pub fn clean_pattern(raw: &str) -> Option<Pattern> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (negated, rest) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    Some(Pattern {
        glob: parts.join("/"),
        negated,
    })
}

/// Parses a `.dockerignore` file.
pub fn parse_dockerignore(file: &str, text: &str) -> Result<Vec<Pattern>, PlanError> {
    let mut patterns = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        if let Some(pattern) = clean_pattern(raw) {
            if pattern.glob.is_empty() && pattern.negated {
                return Err(PlanError::malformed(
                    file,
                    Some(index + 1),
                    "illegal exclusion pattern \"!\"",
                    Some("write !<pattern> to re-include files matching <pattern>"),
                ));
            }
            compile(&pattern.glob).map_err(|err| {
                PlanError::malformed(
                    file,
                    Some(index + 1),
                    format!("invalid pattern {:?}: {}", raw.trim(), err.kind()),
                    Some("patterns use Docker's syntax: *, ?, [a-z], ** and a leading ! to re-include"),
                )
            })?;
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

fn compile(glob: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

impl Matcher {
    /// Builds a matcher; `origin` names where invalid patterns came from.
    pub fn new(patterns: &[Pattern], origin: &str) -> Result<Self, PlanError> {
        let mut builder = GlobSetBuilder::new();
        let mut negated = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            // A pattern that cleans to nothing (e.g. "/") matches the whole context: Docker
            // treats it as matching everything, and so does "**".
            let glob = if pattern.glob.is_empty() {
                "**"
            } else {
                &pattern.glob
            };
            let compiled = compile(glob).map_err(|err| {
                PlanError::malformed(
                    origin,
                    None,
                    format!("invalid pattern {glob:?}: {}", err.kind()),
                    Some("patterns use Docker's syntax: *, ?, [a-z], ** and a leading ! to re-include"),
                )
            })?;
            builder.add(compiled);
            negated.push(pattern.negated);
        }
        let set = builder.build().map_err(|err| {
            PlanError::malformed(
                origin,
                None,
                format!("invalid patterns: {}", err.kind()),
                None,
            )
        })?;
        Ok(Matcher { set, negated })
    }

    /// Whether any pattern re-includes (then excluded directories must still be walked).
    pub fn has_negations(&self) -> bool {
        self.negated.iter().any(|&n| n)
    }

    /// Whether `path` (relative, `/`-separated) is excluded: the last pattern that matches the
    /// path or one of its parent directories decides.
    pub fn is_excluded(&self, path: &str) -> bool {
        let mut last: Option<usize> = None;
        let mut prefix_end = 0;
        loop {
            let next = path[prefix_end..].find('/').map(|i| prefix_end + i);
            let prefix = match next {
                Some(end) => &path[..end],
                None => path,
            };
            if let Some(max) = self.set.matches(prefix).into_iter().max() {
                last = Some(last.map_or(max, |l| l.max(max)));
            }
            match next {
                Some(end) => prefix_end = end + 1,
                None => break,
            }
        }
        last.and_then(|i| self.negated.get(i))
            .is_some_and(|negated| !negated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(lines: &str) -> Matcher {
        let patterns = parse_dockerignore(".dockerignore", lines).expect("valid patterns");
        Matcher::new(&patterns, ".dockerignore").expect("matcher")
    }

    #[test]
    fn docker_semantics() {
        let m = matcher("# comment\n/docs\n*.md\n!README.md\n**/*.log\ntmp/*\nsecret?.txt\n");
        assert!(m.is_excluded("docs"));
        assert!(
            m.is_excluded("docs/a/b.txt"),
            "a directory pattern excludes its contents"
        );
        assert!(
            !m.is_excluded("src/docs"),
            "patterns are anchored at the root"
        );
        assert!(m.is_excluded("CHANGES.md"));
        assert!(!m.is_excluded("sub/CHANGES.md"), "* does not cross /");
        assert!(
            !m.is_excluded("README.md"),
            "last match wins: ! re-includes"
        );
        assert!(m.is_excluded("a/b/c.log"));
        assert!(m.is_excluded("c.log"), "**/ matches zero directories");
        assert!(m.is_excluded("tmp/x"));
        assert!(!m.is_excluded("tmp"));
        assert!(m.is_excluded("secret1.txt"));
        assert!(!m.is_excluded("secret12.txt"));
    }

    #[test]
    fn negation_inside_an_excluded_directory() {
        let m = matcher("data\n!data/keep.txt\n");
        assert!(m.is_excluded("data/drop.txt"));
        assert!(!m.is_excluded("data/keep.txt"));
        assert!(m.has_negations());
    }

    #[test]
    fn cleaning_like_filepath_clean() {
        let m = matcher("./build/../dist/\n");
        assert!(m.is_excluded("dist/x.whl"));
        assert!(!m.is_excluded("build"));
    }

    #[test]
    fn bad_patterns_name_the_line() {
        match parse_dockerignore(".dockerignore", "ok\n[z-a\n") {
            Err(PlanError::Malformed { line, .. }) => assert_eq!(line, Some(2)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse_dockerignore(".dockerignore", "!\n").is_err());
    }
}
