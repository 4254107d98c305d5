//! The license a distribution declares, as an SPDX expression: `License-Expression` (PEP 639)
//! when valid; else the `License` field and the license classifiers when they name one license
//! unambiguously; else none (the documents say NOASSERTION).

use spdx::{Expression, ParseMode};

/// Where the expression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LicenseSource {
    /// The `License-Expression` field.
    LicenseExpression,
    /// The `License` field and/or the `License ::` classifiers.
    LegacyFields,
    /// Nothing usable: NOASSERTION.
    None,
}

/// A declared license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredLicense {
    /// A valid SPDX license expression, or `None` for NOASSERTION.
    pub expression: Option<String>,
    /// Which metadata gave it.
    pub source: LicenseSource,
}

impl DeclaredLicense {
    /// `LicenseRef-…` identifiers the expression uses (they must be declared in SPDX documents).
    pub fn license_refs(&self) -> Vec<String> {
        let Some(text) = &self.expression else {
            return Vec::new();
        };
        let Ok(expr) = Expression::parse_mode(text, ParseMode::STRICT) else {
            return Vec::new();
        };
        let mut refs: Vec<String> = expr
            .requirements()
            .filter_map(|r| match &r.req.license {
                spdx::LicenseItem::Other(r) => Some(format!("LicenseRef-{}", r.lic_ref)),
                spdx::LicenseItem::Spdx { .. } => None,
            })
            .collect();
        refs.sort();
        refs.dedup();
        refs
    }
}

/// Trove classifiers that name exactly one SPDX license. Classifiers without a version (`Apache
/// Software License`, `BSD License`, `GNU General Public License (GPL)`) are deliberately absent:
/// they fit several licenses.
const CLASSIFIERS: &[(&str, &str)] = &[
    ("License :: OSI Approved :: MIT License", "MIT"),
    (
        "License :: OSI Approved :: MIT No Attribution License (MIT-0)",
        "MIT-0",
    ),
    ("License :: OSI Approved :: ISC License (ISCL)", "ISC"),
    (
        "License :: OSI Approved :: Python Software Foundation License",
        "PSF-2.0",
    ),
    (
        "License :: OSI Approved :: The Unlicense (Unlicense)",
        "Unlicense",
    ),
    (
        "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)",
        "BSL-1.0",
    ),
    ("License :: OSI Approved :: zlib/libpng License", "Zlib"),
    (
        "License :: OSI Approved :: Universal Permissive License (UPL)",
        "UPL-1.0",
    ),
    (
        "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)",
        "MPL-2.0",
    ),
    (
        "License :: OSI Approved :: Mozilla Public License 1.1 (MPL 1.1)",
        "MPL-1.1",
    ),
    (
        "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)",
        "EPL-2.0",
    ),
    (
        "License :: OSI Approved :: Eclipse Public License 1.0 (EPL-1.0)",
        "EPL-1.0",
    ),
    (
        "License :: OSI Approved :: European Union Public Licence 1.2 (EUPL 1.2)",
        "EUPL-1.2",
    ),
    (
        "License :: OSI Approved :: GNU General Public License v2 (GPLv2)",
        "GPL-2.0-only",
    ),
    (
        "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)",
        "GPL-2.0-or-later",
    ),
    (
        "License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
        "GPL-3.0-only",
    ),
    (
        "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)",
        "GPL-3.0-or-later",
    ),
    (
        "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)",
        "LGPL-2.0-only",
    ),
    (
        "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)",
        "LGPL-2.0-or-later",
    ),
    (
        "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)",
        "LGPL-3.0-only",
    ),
    (
        "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)",
        "LGPL-3.0-or-later",
    ),
    (
        "License :: OSI Approved :: GNU Affero General Public License v3",
        "AGPL-3.0-only",
    ),
    (
        "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)",
        "AGPL-3.0-or-later",
    ),
    (
        "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication",
        "CC0-1.0",
    ),
];

/// Free-text `License` values (compared case-insensitively) that name exactly one license.
/// Bare `BSD`, `GPL` or `Apache` are not here: they name families, not licenses.
const LICENSE_TEXTS: &[(&str, &str)] = &[
    ("mit license", "MIT"),
    ("the mit license", "MIT"),
    ("mit licence", "MIT"),
    ("apache 2.0", "Apache-2.0"),
    ("apache 2", "Apache-2.0"),
    ("apache-2", "Apache-2.0"),
    ("apache license 2.0", "Apache-2.0"),
    ("apache license, version 2.0", "Apache-2.0"),
    ("apache license version 2.0", "Apache-2.0"),
    ("apache software license 2.0", "Apache-2.0"),
    ("bsd-3", "BSD-3-Clause"),
    ("bsd 3-clause", "BSD-3-Clause"),
    ("3-clause bsd", "BSD-3-Clause"),
    ("3-clause bsd license", "BSD-3-Clause"),
    ("new bsd license", "BSD-3-Clause"),
    ("bsd-2", "BSD-2-Clause"),
    ("bsd 2-clause", "BSD-2-Clause"),
    ("2-clause bsd license", "BSD-2-Clause"),
    ("isc license", "ISC"),
    ("mpl 2.0", "MPL-2.0"),
    ("mozilla public license 2.0", "MPL-2.0"),
    ("python software foundation license", "PSF-2.0"),
    ("psf license", "PSF-2.0"),
];

/// A strictly valid SPDX expression, normalised to the list's spelling, or `None`.
pub fn valid_expression(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 512 {
        return None;
    }
    let expr = Expression::parse_mode(text, ParseMode::STRICT).ok()?;
    // A `DocumentRef-` points into another SPDX document, which these documents do not carry.
    let external = expr
        .requirements()
        .any(|r| matches!(&r.req.license, spdx::LicenseItem::Other(r) if r.doc_ref.is_some()));
    if external {
        return None;
    }
    // Operators in the spelling the SPDX specification uses.
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| match w.to_ascii_lowercase().as_str() {
            "and" | "or" | "with" => w.to_ascii_uppercase(),
            _ => w.to_owned(),
        })
        .collect();
    Some(words.join(" "))
}

/// What the `License` field says, if it names one license.
fn from_license_field(text: &str) -> Option<String> {
    let text = text.trim();
    // Whole license texts and long sentences are not names.
    if text.contains('\n') || text.len() > 80 {
        return None;
    }
    valid_expression(text).or_else(|| {
        let lower = text.to_lowercase();
        LICENSE_TEXTS
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, id)| (*id).to_owned())
    })
}

/// The declared license of a distribution.
pub fn declared(
    license_expression: Option<&str>,
    license: Option<&str>,
    classifiers: &[String],
) -> DeclaredLicense {
    if let Some(expression) = license_expression.and_then(valid_expression) {
        return DeclaredLicense {
            expression: Some(expression),
            source: LicenseSource::LicenseExpression,
        };
    }
    let mut candidates: Vec<Option<String>> = classifiers
        .iter()
        .filter(|c| c.starts_with("License ::"))
        .map(|c| {
            CLASSIFIERS
                .iter()
                .find(|(name, _)| name == c)
                .map(|(_, id)| (*id).to_owned())
        })
        .collect();
    if let Some(text) = license {
        candidates.push(from_license_field(text));
    }
    let first = candidates.first().cloned().flatten();
    let agree = !candidates.is_empty() && candidates.iter().all(|c| c.is_some() && *c == first);
    match first {
        Some(expression) if agree => DeclaredLicense {
            expression: Some(expression),
            source: LicenseSource::LegacyFields,
        },
        _ => DeclaredLicense {
            expression: None,
            source: LicenseSource::None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifiers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn license_expression_wins_when_valid() {
        let d = declared(Some("MIT OR Apache-2.0"), Some("BSD"), &[]);
        assert_eq!(d.expression.as_deref(), Some("MIT OR Apache-2.0"));
        assert_eq!(d.source, LicenseSource::LicenseExpression);
        let bad = declared(Some("Not A License"), None, &[]);
        assert_eq!(bad.expression, None);
    }

    #[test]
    fn classifiers_and_license_field_must_agree() {
        let mit = classifiers(&["License :: OSI Approved :: MIT License"]);
        assert_eq!(
            declared(None, None, &mit).expression.as_deref(),
            Some("MIT")
        );
        assert_eq!(
            declared(None, Some("MIT License"), &mit)
                .expression
                .as_deref(),
            Some("MIT")
        );
        assert_eq!(declared(None, Some("Apache 2.0"), &mit).expression, None);
        let bsd = classifiers(&["License :: OSI Approved :: BSD License"]);
        assert_eq!(
            declared(None, None, &bsd).expression,
            None,
            "BSD License is a family"
        );
        assert_eq!(declared(None, Some("BSD"), &[]).expression, None);
        let two = classifiers(&[
            "License :: OSI Approved :: MIT License",
            "License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
        ]);
        assert_eq!(declared(None, None, &two).expression, None);
    }

    #[test]
    fn license_field_spdx_ids_and_full_texts() {
        assert_eq!(
            declared(None, Some("BSD-3-Clause"), &[])
                .expression
                .as_deref(),
            Some("BSD-3-Clause")
        );
        let text = "Copyright (c) 2010 Someone\n\nPermission is hereby granted, free of charge";
        assert_eq!(declared(None, Some(text), &[]).expression, None);
        assert_eq!(declared(None, None, &[]).source, LicenseSource::None);
    }

    #[test]
    fn license_refs_are_listed() {
        let d = declared(Some("MIT AND LicenseRef-Proprietary"), None, &[]);
        assert_eq!(d.license_refs(), vec!["LicenseRef-Proprietary"]);
    }
}
